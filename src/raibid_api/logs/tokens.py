"""Stream tokens: short-lived signed grants to read one job's log, or one `/events` filter.

A browser's `EventSource` cannot send an `Authorization` header, and an API token in a URL ends up
in access logs and browser history. A stream token is what goes in the URL instead (``?token=``):
it names what it may read and until when, signed with HMAC-SHA256; nothing is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from raibid_api.errors import (
    InvalidStreamTokenError,
    StreamTokenExpiredError,
    StreamTokenScopeError,
)

_PREFIX = "rst1"
_MAC_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def job_grant(job_id: str) -> dict[str, Any]:
    """What a job's log token grants: that job's log (and `/events?jobs=` of that job alone)."""
    return {"jobs": [job_id]}


def jobs_grant(job_ids: Sequence[str]) -> dict[str, Any]:
    """What an `/events?jobs=` token grants: those jobs, in any order (or some of them)."""
    return {"jobs": sorted(set(job_ids))}


def filter_grant(canonical: Mapping[str, Any]) -> dict[str, Any]:
    """What an `/events` token grants: every job's status changes through that filter."""
    return {"filter": dict(canonical)}


class StreamTokens:
    """Mints and checks stream tokens with one secret."""

    def __init__(self, secret: bytes, ttl_s: float, now: Callable[[], float]) -> None:
        """Tokens signed with ``secret``, valid ``ttl_s`` seconds from ``now()`` (epoch s)."""
        self._secret = secret
        self._ttl_s = ttl_s
        self._now = now

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def mint(self, grant: Mapping[str, Any]) -> tuple[str, float]:
        """A token for ``grant``, and when it expires (epoch seconds)."""
        expires = int(self._now() + self._ttl_s)
        body = orjson.dumps({"g": grant, "exp": expires}, option=orjson.OPT_SORT_KEYS)
        return f"{_PREFIX}.{_b64(body)}.{_b64(self._mac(body))}", float(expires)

    def check(self, token: str, wanted: Mapping[str, Any]) -> None:
        """Accept ``token`` for a request that reads ``wanted`` (a grant), or raise.

        A jobs grant covers a request for some of its jobs; a filter grant only the same filter.

        Raises:
            InvalidStreamTokenError: not a token this secret signed.
            StreamTokenExpiredError: past its lifetime.
            StreamTokenScopeError: a token for other jobs, or another filter.
        """
        if not _covers(self.verify(token), wanted):
            raise StreamTokenScopeError("this stream token was minted for another job or filter")

    def verify(self, token: str) -> dict[str, Any]:
        """What ``token`` grants, if this secret signed it and it has not expired.

        Raises:
            InvalidStreamTokenError: not a token this secret signed.
            StreamTokenExpiredError: past its lifetime.
        """
        try:
            prefix, body_text, mac_text = token.split(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            raise InvalidStreamTokenError(
                "malformed stream token; mint one with POST …/token"
            ) from None
        if prefix != _PREFIX or not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidStreamTokenError("this stream token was not issued by this server")
        claims = orjson.loads(body)
        if float(claims["exp"]) <= self._now():
            raise StreamTokenExpiredError("this stream token expired; mint a new one")
        grant: dict[str, Any] = claims["g"]
        return grant


def _covers(granted: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    if "jobs" in granted and "jobs" in wanted:
        return set(wanted["jobs"]) <= set(granted["jobs"])
    return "filter" in granted and granted.get("filter") == wanted.get("filter")
