"""Slow and oversized clients, cut at the connection: deadlines, header limits, a connection cap.

uvicorn reads a request's head and body for as long as the client takes, and takes headers of
any size: a client trickling one byte a second holds a connection (and a file descriptor) for
ever, and a webhook whose body never ends would hold its intake task. `GuardedHttpProtocol` is
uvicorn's httptools protocol with the limits a server facing the network needs:

- the request line and headers must arrive within ``header_timeout`` of the connection (or of
  the request's first byte, on a kept-alive connection), the body within ``body_timeout`` of the
  headers; past that the client gets 408 (when no answer has started) and the connection closes,
  and a request cut while its body arrives reaches the app as a disconnect, so nothing half-read
  is acted on (a webhook is never acknowledged);
- the request line and headers together are at most ``max_header_bytes``, in at most
  ``max_headers`` fields (431; a longer URL alone: 414);
- at most ``max_connections`` connections are open at once; one more is answered 503 with
  ``Retry-After`` and closed at once.

Every refusal is the JSON error body the app answers with. Idle kept-alive connections are
uvicorn's own business (``timeout_keep_alive``).

The common case costs next to nothing: a request whose bytes arrive in one read arms no timer
(a deadline is armed only for a head or body still missing after a read), and the head's size
is counted per read, not per header field.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal, cast

import orjson
import structlog
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from raibid_api.config import ServerSettings

_log = structlog.get_logger("raibid_api.connections")


@dataclass(frozen=True)
class ConnectionLimits:
    """What a connection may take (``server.*`` settings)."""

    header_timeout: float
    body_timeout: float
    max_header_bytes: int
    max_headers: int
    max_connections: int

    @classmethod
    def of(cls, server: ServerSettings) -> ConnectionLimits:
        """The limits the ``server`` settings give."""
        return cls(
            header_timeout=server.header_timeout.total_seconds(),
            body_timeout=server.body_timeout.total_seconds(),
            max_header_bytes=server.max_header_bytes,
            max_headers=server.max_headers,
            max_connections=server.max_connections,
        )


@dataclass(frozen=True)
class _Refusal:
    status: int
    code: str
    message: str
    retry_after: int | None = None

    def render(self) -> bytes:
        body = orjson.dumps(
            {"error": self.code, "message": self.message,
             "request_id": f"{random.getrandbits(128):032x}"}
        )  # fmt: skip
        head = [
            STATUS_LINE[self.status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
        ]
        if self.retry_after is not None:
            head.append(b"retry-after: %d\r\n" % self.retry_after)
        return b"".join([*head, b"\r\n", body])


_URI_TOO_LONG = _Refusal(414, "uri_too_long", "the URL is too long")


class _RefusedError(Exception):
    """Raised from a parser callback: the parser stops, and `send_400_response` answers."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the deadlines and limits of `ConnectionLimits`."""

    limits: ClassVar[ConnectionLimits]

    _deadline: asyncio.TimerHandle | None = None
    _refusal: _Refusal | None = None
    _head_bytes = 0  # of the request line and headers so far, counted as they arrive
    _phase: Literal["head", "body"] | None = None  # what of a request is still to come

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Take the connection, or refuse it when the server holds its maximum already."""
        # uvicorn's own signature narrows asyncio's: a stream server's transports are these
        super().connection_made(cast(asyncio.Transport, transport))
        if len(self.connections) > self.limits.max_connections:
            _log.warning("connection refused", reason="too many connections",
                         limit=self.limits.max_connections)  # fmt: skip
            self._refuse(_Refusal(503, "too_many_connections",
                                  "the server holds as many connections as it takes; retry",
                                  retry_after=1))  # fmt: skip
            return
        self._arm(self.limits.header_timeout, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and its deadline."""
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse what came; a request left unfinished by it gets its deadline now.

        A request that arrives whole in one read (most do) never arms a timer: the deadline is
        armed only for a head or a body still missing when the bytes at hand are parsed.
        """
        super().data_received(data)
        if self._phase == "head":
            # all of it was head (the parser is still in the head): what the parser buffers
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                # no header field yet: the request line alone is too long
                refusal = self._head_too_large() if self.headers else _URI_TOO_LONG
                _log.info("request refused", error=refusal.code)
                self._refuse(refusal)
                return
        if self._deadline is None and self._phase is not None and not self.transport.is_closing():
            head = self._phase == "head"
            self._arm(
                self.limits.header_timeout if head else self.limits.body_timeout,
                self._head_late if head else self._body_late,
            )

    def on_message_begin(self) -> None:
        """A request starts: its head is counted from here."""
        super().on_message_begin()
        self._head_bytes = 0
        self._phase = "head"

    def on_headers_complete(self) -> None:
        """The head is in, within its limits: its body, if any, has until the body deadline."""
        self._disarm()
        limits = self.limits
        if len(self.headers) > limits.max_headers:
            message = f"a request takes at most {limits.max_headers} header fields"
            self._refuse_from_parser(_Refusal(431, "too_many_headers", message))
        if len(self.url) > limits.max_header_bytes:
            self._refuse_from_parser(_URI_TOO_LONG)
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > limits.max_header_bytes:
            self._refuse_from_parser(self._head_too_large())
        self._phase = "body"
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The whole request is in: no deadline until the next one starts."""
        self._disarm()
        self._phase = None
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """Answer a refusal a parser callback raised, or a request that is not HTTP, as JSON."""
        refusal = self._refusal or _Refusal(400, "invalid_http", "the request is not valid HTTP")
        if self._refusal is None:
            _log.info("invalid HTTP request", reason=msg)
        self._refuse(refusal)

    def _head_too_large(self) -> _Refusal:
        limit = self.limits.max_header_bytes
        return _Refusal(
            431, "headers_too_large", f"the request line and headers exceed {limit} bytes"
        )

    def _refuse_from_parser(self, refusal: _Refusal) -> None:
        _log.info("request refused", error=refusal.code)
        self._refusal = refusal
        raise _RefusedError(refusal.code)

    def _refuse(self, refusal: _Refusal) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(refusal.render())
            self.transport.close()

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_late(self) -> None:
        self._deadline = None
        _log.info("request cut", reason="headers not complete in time",
                  timeout=self.limits.header_timeout)  # fmt: skip
        self._cut("the request line and headers did not arrive in time")

    def _body_late(self) -> None:
        self._deadline = None
        _log.info("request cut", reason="body not complete in time",
                  timeout=self.limits.body_timeout)  # fmt: skip
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # the app reading the body sees the client gone, and acts on nothing half-read;
            # anything it still answers is dropped
            cycle.disconnected = True
            cycle.message_event.set()
        self._cut("the request body did not arrive in time")

    def _cut(self, message: str) -> None:
        cycle = self.cycle
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        if answering:
            self.transport.close()
        else:
            self._refuse(_Refusal(408, "request_timeout", message))


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """A `GuardedHttpProtocol` class bound to ``limits``, for ``uvicorn.Config(http=...)``."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})
