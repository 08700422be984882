from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raibid_api.errors import InvalidCursorError
from raibid_api.jobs.cursor import CursorCodec

CODEC = CursorCodec(b"k" * 32)


@given(st.integers(min_value=0, max_value=2**53), st.uuids().map(str), st.text(max_size=50))
def test_cursor_round_trips(score: int, job_id: str, fingerprint: str) -> None:
    assert CODEC.decode(CODEC.encode(score, job_id, fingerprint), fingerprint) == (score, job_id)


def test_cursor_of_another_deployment_is_refused() -> None:
    other = CursorCodec(b"o" * 32).encode(1, "a", "f")
    with pytest.raises(InvalidCursorError, match="not issued"):
        CODEC.decode(other, "f")


def test_cursor_for_other_filters_is_refused() -> None:
    cursor = CODEC.encode(1, "a", "status=pending")
    with pytest.raises(InvalidCursorError, match="other filters"):
        CODEC.decode(cursor, "status=failed")


@given(st.text(max_size=200))
def test_arbitrary_text_is_refused_cleanly(text: str) -> None:
    with pytest.raises(InvalidCursorError):
        CODEC.decode(text, "f")


def test_altered_cursor_is_refused() -> None:
    body, mac = CODEC.encode(1000, "a", "f").split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB")
    with pytest.raises(InvalidCursorError):
        CODEC.decode(f"{forged}.{mac}", "f")
