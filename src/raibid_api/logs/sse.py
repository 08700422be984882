"""The Server-Sent Events wire format: newline-safe event encoding, and `Last-Event-ID` parsing.

Pure: no I/O. An SSE field ends at CR, LF or CRLF, so `id`, `event` and comments must never carry
one (they are refused), and `data` is split over one `data:` line per line of text, which a client
joins back with LF.
"""

from __future__ import annotations

import re

from raibid_api.errors import InvalidInputError

RETRY_MS = 3_000
"""How long a client waits before it reconnects after the connection drops."""
SHUTDOWN_RETRY_MS = 500
"""The reconnection delay a stream ends with when its server stops: another replica serves it."""

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BREAKS = frozenset("\r\n")
# a Redis stream entry id, `<ms>-<seq>`: both parts are unsigned 64-bit integers
_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_MAX_U64 = 2**64 - 1


def encode_event(event: str, data: str, event_id: str | None = None) -> bytes:
    """One event: its `id` (when given), its `event` name and its `data`, then a blank line.

    Raises:
        ValueError: ``event`` or ``event_id`` holds a line break (or ``event_id`` a NUL, which
            browsers ignore an id for).
    """
    lines = []
    if event_id is not None:
        _check_field("id", event_id)
        if "\0" in event_id:
            raise ValueError("an SSE id must not contain NUL")
        lines.append(f"id: {event_id}")
    _check_field("event", event)
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode()


def encode_retry(milliseconds: int) -> bytes:
    """The `retry:` hint: how long a client waits before reconnecting."""
    if milliseconds < 0:
        raise ValueError("an SSE retry must not be negative")
    return f"retry: {milliseconds}\n\n".encode()


def encode_comment(text: str) -> bytes:
    """A comment line, which clients ignore: it keeps an idle connection (and its proxies) open.

    Raises:
        ValueError: ``text`` holds a line break.
    """
    _check_field("comment", text)
    return f": {text}\n\n".encode()


def _check_field(name: str, value: str) -> None:
    if not _BREAKS.isdisjoint(value):
        raise ValueError(f"an SSE {name} must not contain a line break")


def is_entry_id(text: str) -> bool:
    """Whether ``text`` is a Redis stream entry id (`<ms>-<seq>`, each part fitting 64 bits)."""
    if _ENTRY_ID.fullmatch(text) is None:
        return False
    ms, seq = text.split("-")
    return int(ms) <= _MAX_U64 and int(seq) <= _MAX_U64


def parse_last_event_id(header: str | None, query: str | None) -> str | None:
    """The entry a client resumes after: the `Last-Event-ID` header, else ``?last_event_id=``.

    The header wins, because a browser reconnecting keeps the URL it started with (and so an old
    query value) while its header names the last event it actually received. An empty value
    means none.

    Raises:
        InvalidInputError: the value is not a stream entry id.
    """
    value = header if header else query
    if not value:
        return None
    if not is_entry_id(value):
        raise InvalidInputError(
            "Last-Event-ID must be the id of a log event, such as 1700000000000-0"
        )
    return value
