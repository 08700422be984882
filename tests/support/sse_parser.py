"""A small Server-Sent Events parser, written from the WHATWG spec, to read what we encode."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(r"\r\n|\r|\n")


@dataclass
class ParsedEvent:
    """One dispatched event, with the fields the spec keeps."""

    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass
class ParsedStream:
    """Everything a stream carried: its events, its comments and its last retry hint."""

    events: list[ParsedEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


def parse_stream(text: str) -> ParsedStream:
    """Parse ``text`` as a whole SSE stream (the spec's "interpret the stream" steps)."""
    stream = ParsedStream()
    event, last_id = "", None
    data: list[str] = []
    for line in _LINE.split(text):
        if line == "":
            if data:
                joined = "\n".join(data)
                stream.events.append(ParsedEvent(event or "message", joined, last_id))
            event, data = "", []
            continue
        name, colon, value = line.partition(":")
        if name == "" and colon:
            stream.comments.append(value.removeprefix(" "))
            continue
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            stream.retry = int(value)
    return stream
