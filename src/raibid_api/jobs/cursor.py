"""Opaque pagination cursors: a position in a listing, signed so a forged one is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson

from raibid_api.errors import InvalidCursorError

_VERSION = 1
_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Encodes (score, job id) positions bound to the filter they were issued for."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, score: int, job_id: str, fingerprint: str) -> str:
        """The cursor that continues after the job ``job_id`` (scored ``score``)."""
        body = orjson.dumps([_VERSION, score, job_id, fingerprint])
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def decode(self, cursor: str, fingerprint: str) -> tuple[int, str]:
        """The (score, job id) a cursor points after.

        Raises:
            InvalidCursorError: the cursor was not issued by this deployment, was altered, or
                was issued for other filters.
        """
        try:
            body_text, mac_text = cursor.split(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            raise InvalidCursorError("cursor is malformed; use next_cursor as given") from None
        if not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidCursorError("cursor was not issued by this server")
        version, score, job_id, issued_for = orjson.loads(body)
        if version != _VERSION or issued_for != fingerprint:
            raise InvalidCursorError("cursor belongs to other filters; start from the first page")
        return int(score), str(job_id)
