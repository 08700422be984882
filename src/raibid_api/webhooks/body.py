"""Delivery bodies: JSON or form-encoded, into the JSON payload bytes and the bytes that are signed.

Gitea and Forgejo sign the JSON payload itself, so for their form deliveries
(``payload=<url-encoded JSON>``) the HMAC covers the *decoded* ``payload`` value; GitHub signs
the request body as received. Nothing is re-serialised: the signed bytes are exactly the forge's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import orjson

from raibid_api.errors import InvalidWebhookError, UnsupportedMediaTypeError

JSON_MEDIA_TYPE = "application/json"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
FORM_PAYLOAD_FIELD = b"payload"


@dataclass(frozen=True, slots=True)
class DeliveryBody:
    """A delivery body taken apart.

    Attributes:
        payload: the JSON text of the event payload.
        signed: the bytes the forge's HMAC covers.
    """

    payload: bytes
    signed: bytes


def media_type(content_type: str | None) -> str | None:
    """The media type of a ``Content-Type`` value, lower-cased, without its parameters."""
    if content_type is None:
        return None
    return content_type.partition(";")[0].strip().lower() or None


def _form_field(body: bytes, name: bytes) -> bytes:
    """The one value of field ``name`` in a form-encoded body, percent-decoded to raw bytes."""
    values = []
    for pair in body.split(b"&"):
        key, _, value = pair.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == name:
            values.append(unquote_to_bytes(value.replace(b"+", b" ")))
    if len(values) != 1:
        raise InvalidWebhookError("a form-encoded webhook needs exactly one 'payload' field")
    return values[0]


def read_body(content_type: str | None, body: bytes, *, form_signs_payload: bool) -> DeliveryBody:
    """Take a delivery body apart by its ``Content-Type``.

    Args:
        content_type: the ``Content-Type`` header, if any.
        body: the request body exactly as received.
        form_signs_payload: for form deliveries, the forge signs the decoded ``payload`` value
            (Gitea, Forgejo) rather than the body as received (GitHub).

    Raises:
        UnsupportedMediaTypeError: neither JSON nor a form.
        InvalidWebhookError: a form without exactly one ``payload`` field.
    """
    kind = media_type(content_type)
    if kind == JSON_MEDIA_TYPE:
        return DeliveryBody(payload=body, signed=body)
    if kind == FORM_MEDIA_TYPE:
        payload = _form_field(body, FORM_PAYLOAD_FIELD)
        return DeliveryBody(payload=payload, signed=payload if form_signs_payload else body)
    raise UnsupportedMediaTypeError(
        f"webhook bodies must be {JSON_MEDIA_TYPE} or {FORM_MEDIA_TYPE}",
        media_type=(kind or "")[:100],
    )


def parse_json_object(payload: bytes) -> dict[str, object]:
    """Decode a JSON payload, which must be an object.

    Raises:
        InvalidWebhookError: not UTF-8 JSON, or not an object at the top level.
    """
    try:
        decoded = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise InvalidWebhookError("the webhook payload is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise InvalidWebhookError("the webhook payload must be a JSON object")
    return decoded
