"""How routes are registered: the direct route class of the hottest endpoints, and the aliases.

`GET /jobs/{id}` and the webhook intake are the requests a CI server answers most, and FastAPI's
dependency solving and validation cost about as much as the intake's own work. A `DirectRoute`
calls its endpoint with the request and the path parameters and nothing else; the endpoint does
its own auth and parsing. The route stays a FastAPI route: it is documented from its declaration,
matched by the router, and its errors take the app's exception handlers.

Every route is declared once; `include_routes` serves it under each of its aliases, which the
OpenAPI document leaves out.

FastAPI (0.165) matches a request through each included router in turn, and wraps every endpoint
in its exception layer and exit stack: for the two hottest endpoints that cost as much again as
the endpoint itself (`docs/benchmarks.md`). So the direct routes `include_routes` registers are
also handed, one per alias, to `DirectDispatch`, the innermost of the app's middleware, which
matches them first and calls their handler with the app's own exception handlers. Nothing is
declared twice: the dispatcher serves the routes the router holds, and a request it does not
match in full (another method: the router's 405) passes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

# "/api": the paths the original raibid CLI calls
API_PREFIXES = ("", "/api")
# "/webhooks": the path forges were configured with before the intake moved to "/webhook"
WEBHOOK_PREFIXES = ("/webhook", "/webhooks")


class DirectRoute(APIRoute):
    """A route whose endpoint is called as ``endpoint(request=..., **path_params)``, nothing solved.

    A GET route answers HEAD too, as Starlette's routes do (the server leaves the body out);
    HEAD stays out of its declared methods, so the OpenAPI document shows only GET.

    Raises:
        TypeError: the endpoint declares a parameter other than the request and the path's.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        solved = self.dependant
        if solved.request_param_name != "request" or any(
            (solved.query_params, solved.header_params, solved.cookie_params,
             solved.body_params, solved.dependencies)
        ):  # fmt: skip
            raise TypeError(f"{self.name} may take only the request and its path parameters")
        self._answers_head = "GET" in (self.methods or ())

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself, given the request and the path parameters as they matched."""
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request=request, **request.path_params)
            return response

        return handler

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Match as a GET when asked with HEAD."""
        return super().matches(self._head_as_get(scope))

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a HEAD as the GET it stands for."""
        await super().handle(self._head_as_get(scope), receive, send)

    def _head_as_get(self, scope: Scope) -> Scope:
        if self._answers_head and scope["type"] == "http" and scope["method"] == "HEAD":
            return {**scope, "method": "GET"}
        return scope


def include_routes(
    app: FastAPI, api: tuple[APIRouter, ...], webhooks: APIRouter, web: APIRouter
) -> list[DirectRoute]:
    """Serve ``api``'s routes and ``webhooks``' under every prefix; only the first documented.

    ``webhooks`` declares its paths below the webhook prefix (``/{forge}``, ``/deliveries``).
    ``web`` (the dashboard's pages and files) is served once, at its own paths, without aliases.

    Returns:
        the direct routes, one per alias, for `DirectDispatch`.
    """
    direct: list[DirectRoute] = []
    for api_prefix in API_PREFIXES:
        documented = api_prefix == API_PREFIXES[0]
        for router in api:
            app.include_router(router, prefix=api_prefix, include_in_schema=documented)
            direct += _direct_routes(router, api_prefix)
        for hook_prefix in WEBHOOK_PREFIXES:
            app.include_router(
                webhooks,
                prefix=api_prefix + hook_prefix,
                include_in_schema=documented and hook_prefix == WEBHOOK_PREFIXES[0],
            )
            direct += _direct_routes(webhooks, api_prefix + hook_prefix)
    app.include_router(web)
    return direct


def _direct_routes(router: APIRouter, prefix: str) -> list[DirectRoute]:
    # the router's own routes, at the path they have under ``prefix``
    return [
        DirectRoute(prefix + route.path, route.endpoint, methods=route.methods, name=route.name)
        for route in router.routes
        if isinstance(route, DirectRoute)
    ]


Handler = Callable[[Request, Exception], Awaitable[Response]]


class DirectDispatch:
    """ASGI middleware serving the direct routes ahead of the router (see the module's notes).

    The innermost of the app's middleware: the request id, the access log and the body limit
    apply as for every route, and a failure is answered by the app's exception handler for it,
    looked up along the exception's classes as Starlette does.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[DirectRoute]) -> None:
        self.app = app
        self._routes = [(route, route.get_route_handler()) for route in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a direct route, or pass the request on."""
        if scope["type"] == "http":
            for route, handler in self._routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    request = Request(scope, receive, send)
                    try:
                        response = await handler(request)
                    except Exception as exc:
                        response = await _handled(request, exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _handled(request: Request, exc: Exception) -> Response:
    handlers: dict[type[Exception], Handler] = request.app.exception_handlers
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        raise exc  # the request-id middleware answers it with a 500
    return await handler(request, exc)
