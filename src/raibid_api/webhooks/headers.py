"""Reading a delivery's headers: which of a forge's header names wins, and the delivery id.

Headers are a ``Mapping[str, str]`` whose names are **lower-cased** by the caller (HTTP header
names are case-insensitive and ASGI servers already hand them over in lower case), so every
lookup here uses lower-case names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from raibid_api.errors import InvalidWebhookError
from raibid_api.webhooks.body import DeliveryBody, read_body

Headers = Mapping[str, str]
"""Request headers, names lower-cased."""

# Forge delivery ids are UUIDs/GUIDs; the id ends up in a Redis key, so keep it to a safe alphabet.
_DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def first_header(headers: Headers, names: Iterable[str]) -> str | None:
    """The value of the first of ``names`` present with a non-empty value, else ``None``."""
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return None


def read_delivery_id(headers: Headers, names: Iterable[str]) -> str | None:
    """The forge's delivery id from the first of ``names`` that is set; ``None`` when none is.

    Raises:
        InvalidWebhookError: the id is longer than 128 characters or has characters outside
            letters, digits, ``.``, ``_`` and ``-``.
    """
    value = first_header(headers, names)
    if value is not None and _DELIVERY_ID.fullmatch(value) is None:
        raise InvalidWebhookError("the webhook delivery id header is malformed")
    return value


class HeaderReading:
    """What every adapter reads the same way, from the header names it declares.

    A mixin for the adapter dataclasses, which set the three fields it uses.
    """

    __slots__ = ()
    delivery_headers: tuple[str, ...]
    event_headers: tuple[str, ...]
    form_signs_payload: bool

    def delivery_id(self, headers: Headers) -> str | None:
        """The delivery id (a forge's UI replay of a delivery gets a new one)."""
        return read_delivery_id(headers, self.delivery_headers)

    def event_type(self, headers: Headers) -> str | None:
        """The exact event type (Gitea: e.g. ``pull_request_sync``; GitHub: the event name)."""
        return first_header(headers, self.event_headers)

    def read_body(self, content_type: str | None, body: bytes) -> DeliveryBody:
        """The JSON payload and the bytes the forge signed."""
        return read_body(content_type, body, form_signs_payload=self.form_signs_payload)
