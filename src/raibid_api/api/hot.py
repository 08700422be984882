"""The hottest routes, served ahead of the framework's exception layers and router.

`GET /jobs/{id}` and the webhook intake are the requests a CI server answers most, and the
layers between the app's own middleware and an endpoint (Starlette's exception middleware,
FastAPI's exit stack, the scan of every route, the endpoint wrapper) cost about as much as the
intake's own work. `HotRoutes` serves the routes given to it directly, with the app's exception
handlers, so answers and error bodies are the same as through the router; every other request,
and a hot path asked with another method, passes on. The documented FastAPI routes stay for the
OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request, Exception], Awaitable[Response]]


class HotRoutes:
    """ASGI middleware that serves ``routes`` itself (the innermost of the app's middleware)."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a hot route, or pass the request on."""
        if scope["type"] == "http":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    await self._serve(route, Request(scope, receive, send), send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, route: Route, request: Request, send: Send) -> None:
        try:
            response: Response = await route.endpoint(request)
        except Exception as exc:
            handler = _handler_for(request, exc)
            if handler is None:
                raise  # the request-id middleware answers it with a 500
            response = await handler(request, exc)
        await response(request.scope, request.receive, send)


def _handler_for(request: Request, exc: Exception) -> Handler | None:
    # the app's handlers, looked up along the exception's classes as Starlette does
    handlers: dict[type[Exception], Handler] = request.app.exception_handlers
    return next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
