"""Typed reads of decoded JSON payload fields, failing with `InvalidWebhookError` naming the field.

Messages name the field path only, never its value: values come from an unauthenticated
client until the signature has been checked, and may be large.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from raibid_api.errors import InvalidWebhookError

JSONObject = Mapping[str, object]

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def invalid_field(path: str, expected: str) -> InvalidWebhookError:
    """The error for a payload field at ``path`` that is not what the intake needs."""
    return InvalidWebhookError(f"webhook payload field {path!r} must be {expected}", field=path)


def optional_object(obj: JSONObject, key: str, path: str = "") -> JSONObject | None:
    """``obj[key]`` when it is a JSON object; ``None`` when it is missing or null."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise invalid_field(path + key, "an object")
    return value


def required_object(obj: JSONObject, key: str, path: str = "") -> JSONObject:
    """``obj[key]``, which must be a JSON object."""
    value = optional_object(obj, key, path)
    if value is None:
        raise invalid_field(path + key, "an object")
    return value


def optional_str(obj: JSONObject, key: str, path: str = "") -> str | None:
    """``obj[key]`` when it is a string; ``None`` when it is missing or null."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_field(path + key, "a string")
    return value


def required_str(obj: JSONObject, key: str, path: str = "") -> str:
    """``obj[key]``, which must be a non-empty string."""
    value = optional_str(obj, key, path)
    if not value:
        raise invalid_field(path + key, "a non-empty string")
    return value


def optional_int(obj: JSONObject, key: str, path: str = "") -> int | None:
    """``obj[key]`` when it is an integer (not a boolean); ``None`` when missing or null."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_field(path + key, "an integer")
    return value


def required_sha(obj: JSONObject, key: str, path: str = "") -> str:
    """``obj[key]``, a full commit sha (40 or 64 hex digits), returned in lower case."""
    value = required_str(obj, key, path).lower()
    if _SHA.fullmatch(value) is None:
        raise invalid_field(path + key, "a full commit sha (40 or 64 hex digits)")
    return value


def optional_login(obj: JSONObject, key: str) -> str | None:
    """The ``login`` (else ``username``) of the user object ``obj[key]``, if there is one."""
    user = optional_object(obj, key)
    if user is None:
        return None
    return optional_str(user, "login", f"{key}.") or optional_str(user, "username", f"{key}.")
