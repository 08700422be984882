"""Request ids and access logging, as pure ASGI middleware (no per-request framework objects)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_log = structlog.get_logger("raibid_api.access")


def request_id_of(scope: Scope) -> str:
    """The id the middleware gave this request ('' outside a request)."""
    return str(scope.get("state", {}).get("request_id", ""))


class RequestContextMiddleware:
    """Echo a sane ``X-Request-ID`` (or make one), bind it to every log line, log each request.

    It also answers an unexpected exception with a 500 (``error_body``), here rather than in
    Starlette's outermost error middleware, so that the answer and the log line of the failure
    still carry the request id.
    """

    def __init__(
        self, app: ASGIApp, error_body: Callable[[str], bytes],
        skip_paths: frozenset[str] = frozenset(),
        on_request_id: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        """``on_request_id`` is told each request's id (tracing puts it on the request's span)."""
        self.app = app
        self.error_body = error_body
        self.skip_paths = skip_paths
        self.on_request_id = on_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), b"")
        # unique, not secret: no system call for randomness on every request
        request_id = given.decode() if _VALID_ID.match(given) else f"{random.getrandbits(128):032x}"
        scope.setdefault("state", {})["request_id"] = request_id
        if self.on_request_id is not None:
            self.on_request_id(request_id)
        started = time.perf_counter()
        status = 500  # until the answer starts
        started_answer = False

        async def send_with_id(message: Message) -> None:
            nonlocal status
            nonlocal started_answer
            if message["type"] == "http.response.start":
                started_answer = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        # bind and reset by hand: `bound_contextvars` is a generator context manager, dearer
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            _log.error("unhandled error", exc_info=exc, method=scope["method"],
                       path=scope["path"])  # fmt: skip
            if started_answer:  # nothing more can be sent
                raise
            await self._internal_error(send_with_id, request_id)
        finally:
            if scope["path"] not in self.skip_paths or status >= 400:
                # a route may mark its routine calls for debug; a failure stays at info
                quiet = status < 400 and scope["state"].get("access_log_level") == "debug"
                (_log.debug if quiet else _log.info)(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.reset_contextvars(**bound)

    async def _internal_error(self, send: Send, request_id: str) -> None:
        body = self.error_body(request_id)
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": body})
