"""Reading a delivery's headers: which of a forge's header names wins, and the delivery id.

Headers are a ``Mapping[str, str]`` whose names are **lower-cased** by the caller (HTTP header
names are case-insensitive and ASGI servers already hand them over in lower case), so every
lookup here uses lower-case names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from raibid_api.errors import InvalidWebhookError

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
