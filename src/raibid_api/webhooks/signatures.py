"""Webhook authentication: the one HMAC-SHA256 check, and Gitea's optional Authorization header.

Every comparison is constant-time (`hmac.compare_digest`), each configured secret is tried in
full (rotation: several are valid at once), and nothing here ever puts a secret or a digest
into an exception or a return value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from enum import StrEnum

from pydantic import SecretStr

SecretValue = str | bytes | SecretStr
HUB_SIGNATURE_PREFIX = "sha256="


class SignatureResult(StrEnum):
    """The verdict on a delivery's credentials."""

    VALID = "valid"
    """A presented credential matches, and none presented fails."""
    UNSIGNED = "unsigned"
    """Nothing checkable was presented (no header, an empty digest, or no secret configured)."""
    MISMATCH = "mismatch"
    """A presented credential does not match any configured one."""


def _secret_bytes(secret: SecretValue) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def _header_bytes(value: str) -> bytes:
    # Header text may hold any code point (even lone surrogates), and compare_digest refuses
    # non-ASCII str, so compare encoded bytes; surrogatepass makes the encoding total.
    return value.encode("utf-8", "surrogatepass")


def hmac_sha256_hex(secret: SecretValue, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``body``: what the forges send as the digest."""
    return hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest()


def verify_hex_digest(
    digest: str | None, body: bytes, secrets: Sequence[SecretValue]
) -> SignatureResult:
    """Check a bare lowercase-hex HMAC-SHA256 digest of ``body`` against every secret.

    ``None`` or ``""`` is `SignatureResult.UNSIGNED`, as is any digest when no secret is
    configured (there is nothing to check it against). Upper-case, truncated or non-hex digests
    never match, because the forges send lowercase hex and nothing else.
    """
    if not digest or not secrets:
        return SignatureResult.UNSIGNED
    presented = _header_bytes(digest)
    matched = False
    for secret in secrets:
        expected = hmac_sha256_hex(secret, body).encode("ascii")
        # No early exit: the time taken must not reveal which secret matched.
        matched |= hmac.compare_digest(presented, expected)
    return SignatureResult.VALID if matched else SignatureResult.MISMATCH


def verify_hub_signature(
    value: str | None, body: bytes, secrets: Sequence[SecretValue]
) -> SignatureResult:
    """Check an ``X-Hub-Signature-256`` value, ``sha256=<lowercase hex>``.

    Absent, ``""`` and a bare ``sha256=`` are `UNSIGNED` (Gitea sends the latter two when its
    hook has no secret). A value without the ``sha256=`` prefix is malformed: `MISMATCH`
    whenever a secret is configured.
    """
    if not value or value == HUB_SIGNATURE_PREFIX or not secrets:
        return SignatureResult.UNSIGNED
    if not value.startswith(HUB_SIGNATURE_PREFIX):
        return SignatureResult.MISMATCH
    return verify_hex_digest(value.removeprefix(HUB_SIGNATURE_PREFIX), body, secrets)


def verify_authorization(header: str | None, configured: SecretValue | None) -> SignatureResult:
    """Check the ``Authorization`` header a Gitea/Forgejo webhook can be configured to send.

    The header must equal the configured value exactly (scheme included, e.g. ``Bearer x``).
    Without a configured value, or without the header, the result is `UNSIGNED`.
    """
    if configured is None or not header:
        return SignatureResult.UNSIGNED
    matched = hmac.compare_digest(_header_bytes(header), _secret_bytes(configured))
    return SignatureResult.VALID if matched else SignatureResult.MISMATCH


def combine(*results: SignatureResult) -> SignatureResult:
    """One verdict from several credentials: any mismatch wins, then any valid one."""
    if SignatureResult.MISMATCH in results:
        return SignatureResult.MISMATCH
    if SignatureResult.VALID in results:
        return SignatureResult.VALID
    return SignatureResult.UNSIGNED
