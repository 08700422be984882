"""The request body size limit, enforced while the body arrives (pure ASGI)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    """Refuse bodies over a limit with 413, by declared length or by bytes actually received.

    The limit follows the route: the router names the matched endpoint in the scope before an
    endpoint reads the body, so every path serving an endpoint of ``limits`` (its aliases too)
    takes that limit, and every other the default.

    Raising Starlette's `HTTPException` from ``receive`` lets it pass through FastAPI's body parsing
    (which turns any other exception into a 400) to the error handlers.
    """

    def __init__(
        self, app: ASGIApp, default_limit: int, limits: Mapping[Callable[..., Any], int]
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = limits

    def _limit_for(self, scope: Scope) -> int:
        endpoint: Callable[..., Any] | None = scope.get("endpoint")
        return self.limits.get(endpoint, self.default_limit) if endpoint else self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            limit = self._limit_for(scope)
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
            return message

        await self.app(scope, limited_receive, send)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the body is larger than {limit} bytes")
