"""The SSE encoder: newline-safe fields, data that survives a round trip, Last-Event-ID parsing."""

from __future__ import annotations

import httpx
import pytest
from httpx_sse import EventSource
from hypothesis import example, given
from hypothesis import strategies as st

from raibid_api.errors import InvalidInputError
from raibid_api.logs.sse import (
    encode_comment,
    encode_event,
    encode_retry,
    is_entry_id,
    parse_last_event_id,
)
from tests.support.sse_parser import parse_stream

LINE_BREAKS = st.sampled_from(["\n", "\r", "\r\n"])
TEXT = st.text(st.characters(codec="utf-8"))
TEXT_WITH_BREAKS = st.lists(st.one_of(TEXT, LINE_BREAKS)).map("".join)


def normalised(data: str) -> str:
    """What any SSE client makes of ``data``: every line break becomes LF."""
    return data.replace("\r\n", "\n").replace("\r", "\n")


def httpx_sse_events(raw: bytes) -> list[tuple[str, str, str]]:
    """(event, data, id) as httpx-sse reads them from ``raw``."""
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    return [(sse.event, sse.data, sse.id) for sse in EventSource(response).iter_sse()]


@given(event=TEXT_WITH_BREAKS, data=TEXT_WITH_BREAKS, event_id=TEXT_WITH_BREAKS)
@example(event="log\nevent: end", data="x", event_id="1-0")
@example(event="log", data="x", event_id="1-0\rid: 9-9")
def test_encoder_never_lets_a_line_break_into_id_or_event(
    event: str, data: str, event_id: str
) -> None:
    try:
        raw = encode_event(event, data, event_id)
    except ValueError:
        assert any(c in event + event_id for c in "\r\n\0")
        return
    parsed = parse_stream(raw.decode())
    assert len(parsed.events) == 1
    assert parsed.events[0].event == event or (event == "" and parsed.events[0].event == "message")
    assert parsed.events[0].id == event_id


@given(data=TEXT_WITH_BREAKS)
@example(data="")
@example(data="\n")
@example(data=" leading space\n\nid: 5-5\nevent: end\r\n: not a comment")
def test_data_survives_a_round_trip_through_an_sse_parser(data: str) -> None:
    raw = encode_event("log", data, "1700000000000-0")
    parsed = parse_stream(raw.decode())
    assert [(e.event, e.data, e.id) for e in parsed.events] == [
        ("log", normalised(data), "1700000000000-0")
    ]


@given(data=TEXT.filter(lambda t: "\r" not in t))
def test_data_without_carriage_returns_round_trips_exactly_through_httpx_sse(data: str) -> None:
    raw = encode_event("status", data, "5-1")
    assert httpx_sse_events(raw) == [("status", data, "5-1")]


def test_json_data_is_one_data_line() -> None:
    raw = encode_event("log", '{"line": "a\\nb"}', "1-2")
    assert raw == b'id: 1-2\nevent: log\ndata: {"line": "a\\nb"}\n\n'


def test_event_without_id_has_no_id_line() -> None:
    assert encode_event("end", "{}") == b"event: end\ndata: {}\n\n"


def test_retry_hint_is_read_by_clients() -> None:
    assert parse_stream(encode_retry(3000).decode()).retry == 3000


def test_negative_retry_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        encode_retry(-1)


def test_comment_is_ignored_by_clients_and_kept_on_one_line() -> None:
    parsed = parse_stream(encode_comment("heartbeat").decode())
    assert parsed.events == []
    assert parsed.comments == ["heartbeat"]
    with pytest.raises(ValueError, match="line break"):
        encode_comment("two\nlines")


@pytest.mark.parametrize(
    "text", ["0-0", "1700000000000-0", "18446744073709551615-18446744073709551615"]
)
def test_stream_entry_ids_are_accepted(text: str) -> None:
    assert is_entry_id(text)
    assert parse_last_event_id(text, None) == text


@pytest.mark.parametrize(
    "text",
    ["1700000000000", "-0", "1-", "a-1", "1-0\n", " 1-0", "1-0-0", "18446744073709551616-0", "$"],
)
def test_malformed_last_event_id_is_invalid_input(text: str) -> None:
    assert not is_entry_id(text)
    with pytest.raises(InvalidInputError, match="Last-Event-ID"):
        parse_last_event_id(text, None)
    with pytest.raises(InvalidInputError, match="Last-Event-ID"):
        parse_last_event_id(None, text)


def test_header_wins_over_the_query_value() -> None:
    assert parse_last_event_id("9-1", "3-0") == "9-1"


def test_query_value_is_used_without_a_header() -> None:
    assert parse_last_event_id(None, "3-0") == "3-0"
    assert parse_last_event_id("", "3-0") == "3-0"


def test_no_last_event_id_means_from_the_start() -> None:
    assert parse_last_event_id(None, None) is None
    assert parse_last_event_id("", "") is None
