"""Stream tokens: signed, short-lived, bound to what they were minted for."""

from __future__ import annotations

import pytest

from raibid_api.errors import (
    InvalidStreamTokenError,
    StreamTokenExpiredError,
    StreamTokenScopeError,
)
from raibid_api.logs.tokens import StreamTokens, filter_grant, job_grant, jobs_grant


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, secret: bytes = b"s" * 32) -> StreamTokens:
    return StreamTokens(secret, 300, clock)


def test_a_job_token_reads_that_job_and_no_other() -> None:
    clock = Clock()
    tokens = make(clock)
    token, expires = tokens.mint(job_grant("a"))
    assert expires == clock.now + 300
    tokens.check(token, job_grant("a"))
    tokens.check(token, jobs_grant(["a"]))
    with pytest.raises(StreamTokenScopeError):
        tokens.check(token, job_grant("b"))
    with pytest.raises(StreamTokenScopeError):
        tokens.check(token, jobs_grant(["a", "b"]))
    with pytest.raises(StreamTokenScopeError):
        tokens.check(token, filter_grant({"repo": None, "branch": None, "status": []}))


def test_a_jobs_token_covers_its_jobs_in_any_order_or_some_of_them() -> None:
    tokens = make(Clock())
    token, _ = tokens.mint(jobs_grant(["b", "a"]))
    tokens.check(token, jobs_grant(["a", "b"]))
    tokens.check(token, job_grant("b"))
    with pytest.raises(StreamTokenScopeError):
        tokens.check(token, jobs_grant(["a", "c"]))


def test_a_filter_token_covers_only_the_same_filter() -> None:
    tokens = make(Clock())
    wanted = {"repo": "acme/w", "branch": None, "status": ["running"]}
    token, _ = tokens.mint(filter_grant(wanted))
    tokens.check(token, filter_grant(dict(wanted)))
    with pytest.raises(StreamTokenScopeError):
        tokens.check(token, filter_grant(wanted | {"status": []}))


def test_an_expired_token_is_refused() -> None:
    clock = Clock()
    tokens = make(clock)
    token, _ = tokens.mint(job_grant("a"))
    clock.now += 299
    tokens.check(token, job_grant("a"))
    clock.now += 1
    with pytest.raises(StreamTokenExpiredError):
        tokens.check(token, job_grant("a"))


@pytest.mark.parametrize("mangle", ["other-secret", "tampered", "garbage", "empty"])
def test_a_forged_or_altered_token_is_refused(mangle: str) -> None:
    clock = Clock()
    token, _ = make(clock).mint(job_grant("a"))
    if mangle == "other-secret":
        token, _ = make(clock, b"t" * 32).mint(job_grant("a"))
    elif mangle == "tampered":
        prefix, body, mac = token.split(".")
        token = ".".join([prefix, body[:-2] + ("AA" if body[-2:] != "AA" else "BB"), mac])
    elif mangle == "garbage":
        token = "rst1.!!.??"
    else:
        token = ""
    with pytest.raises(InvalidStreamTokenError):
        make(clock).check(token, job_grant("a"))
