"""Claim tokens: what an agent pod of ``dispatch.mode: kubernetes`` holds instead of a fleet token.

A claim token names one job and one attempt and is signed with HMAC-SHA256 under the cluster's
claim key (a random key kept in Redis, the same for every replica): ``rjc1.<job id>.<attempt>.<hex
mac>``. The dispatcher mints it into the Secret of the agent Job it creates for that attempt; the
server accepts it for one call only, the claim of exactly that job at exactly that attempt, which
then hands out the attempt's own job token as for any agent. Nothing is stored per token: every
replica verifies with the key, and a token is worth nothing once its attempt has been claimed, has
ended or was requeued (the next attempt needs another token).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from raibid_api.domain.jobs import parse_job_id
from raibid_api.errors import InvalidJobIdError

PREFIX = "rjc1"
_CONTEXT = b"raibid-api claim token v1\x00"


@dataclass(frozen=True)
class ClaimGrant:
    """The one claim a claim token allows."""

    job_id: str
    attempt: int


def _mac(key: bytes, job_id: str, attempt: int) -> str:
    message = _CONTEXT + f"{job_id}.{attempt}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mint_claim_token(key: bytes, job_id: str, attempt: int) -> str:
    """The claim token for ``job_id``'s attempt ``attempt``.

    Raises:
        InvalidJobIdError: ``job_id`` is not a UUID.
    """
    canonical = parse_job_id(job_id)
    return f"{PREFIX}.{canonical}.{attempt}.{_mac(key, canonical, attempt)}"


def is_claim_token(token: str) -> bool:
    """Whether ``token`` has the shape of a claim token (not whether it is valid)."""
    return token.startswith(PREFIX + ".")


def verify_claim_token(key: bytes, token: str) -> ClaimGrant | None:
    """The claim ``token`` grants; None when it is malformed or not signed with ``key``."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != PREFIX or not (parts[2].isascii() and parts[2].isdigit()):
        return None
    try:
        job_id = parse_job_id(parts[1])
    except InvalidJobIdError:
        return None
    attempt = int(parts[2])
    if not hmac.compare_digest(_mac(key, job_id, attempt).encode(), parts[3].encode()):
        return None
    return ClaimGrant(job_id, attempt)
