"""Delivery bodies: JSON and form encodings, and which bytes each forge signs."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest

from raibid_api.errors import (
    InvalidWebhookError,
    PayloadTooLargeError,
    SignatureMismatchError,
    UnsupportedMediaTypeError,
)
from raibid_api.webhooks.body import media_type, parse_json_object, read_body
from raibid_api.webhooks.events import WebhookEvent
from raibid_api.webhooks.intake import read_delivery
from raibid_api.webhooks.registry import ADAPTERS
from tests.support.webhook_samples import (
    SECRET,
    Forge,
    delivery_headers,
    fixture_bytes,
    hex_hmac,
    make_settings,
)

FORM = "application/x-www-form-urlencoded"
# Characters whose form encoding differs from their JSON bytes: '+', '%', '&', '=', non-ASCII.
TRICKY_JSON = '{"a": "1+1=2 & 100% ünïcode ☃", "b": " spaced "}'.encode()


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_body_is_both_payload_and_signed_bytes(content_type: str) -> None:
    parts = read_body(content_type, TRICKY_JSON, form_signs_payload=True)
    assert parts.payload == parts.signed == TRICKY_JSON


@pytest.mark.parametrize("encode", [quote_plus, quote], ids=["plus", "percent"])
def test_gitea_form_delivery_signs_the_decoded_payload_bytes(
    encode: Callable[[bytes], str],
) -> None:
    body = b"payload=" + encode(TRICKY_JSON).encode("ascii")
    parts = read_body(FORM, body, form_signs_payload=True)
    assert parts.payload == TRICKY_JSON
    assert parts.signed == TRICKY_JSON


def test_github_form_delivery_signs_the_body_as_received() -> None:
    body = b"payload=" + quote_plus(TRICKY_JSON).encode("ascii")
    parts = read_body(FORM, body, form_signs_payload=False)
    assert parts.payload == TRICKY_JSON
    assert parts.signed == body


@pytest.mark.parametrize(
    "body", [b"", b"other=1", b"payload=1&payload=2"], ids=["empty", "no-payload", "two-payloads"]
)
def test_form_without_exactly_one_payload_field_is_invalid(body: bytes) -> None:
    with pytest.raises(InvalidWebhookError):
        read_body(FORM, body, form_signs_payload=True)


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "multipart/form-data; b=x"])
def test_other_media_types_are_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        read_body(content_type, TRICKY_JSON, form_signs_payload=True)


def test_media_type_drops_parameters_and_case() -> None:
    assert media_type(" Application/JSON ; charset=UTF-8") == "application/json"
    assert media_type(";") is None


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b'{"a": 1} trailing'],
)
def test_payload_that_is_not_a_json_object_is_invalid(payload: bytes) -> None:
    with pytest.raises(InvalidWebhookError):
        parse_json_object(payload)


def test_json_object_is_decoded() -> None:
    assert parse_json_object(TRICKY_JSON) == {"a": "1+1=2 & 100% ünïcode ☃", "b": " spaced "}


@pytest.mark.parametrize("forge", ["gitea", "forgejo"])
def test_gitea_form_delivery_of_a_fixture_builds_the_same_event(forge: Forge) -> None:
    body = fixture_bytes("gitea/push-1.json")
    headers = delivery_headers(forge, "push", body)
    headers["content-type"] = FORM
    form = b"payload=" + quote_plus(body).encode("ascii")

    delivery = read_delivery(ADAPTERS[forge], headers, form, make_settings())

    assert isinstance(delivery.outcome, WebhookEvent)
    assert delivery.outcome.commit == "29be01c073851cf0db0c6a466e396b725a670453"


def test_github_form_delivery_is_verified_over_the_raw_body() -> None:
    payload = fixture_bytes("github/push-1.json")
    form = b"payload=" + quote_plus(payload).encode("ascii")
    headers = delivery_headers("github", "push", form) | {"content-type": FORM}
    delivery = read_delivery(ADAPTERS["github"], headers, form, make_settings())
    assert isinstance(delivery.outcome, WebhookEvent)

    headers["x-hub-signature-256"] = f"sha256={hex_hmac(SECRET, payload)}"
    with pytest.raises(SignatureMismatchError):
        read_delivery(ADAPTERS["github"], headers, form, make_settings())


def test_body_over_the_limit_is_refused_before_anything_else() -> None:
    body = b"{" + b" " * 2_000_000 + b"}"
    headers = delivery_headers("gitea", "push", body, secret=None)
    with pytest.raises(PayloadTooLargeError):
        read_delivery(ADAPTERS["gitea"], headers, body, make_settings())
