"""Property: whatever a client sends, every adapter answers with a result or a client error.

Seeded with every recorded fixture through ``@example``, as Woodpecker's fuzz test is.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote_plus

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from raibid_api.config import WebhookSettings
from raibid_api.errors import InvalidWebhookError, UnsupportedMediaTypeError
from raibid_api.webhooks.events import Ignored, WebhookEvent
from raibid_api.webhooks.intake import Delivery, read_delivery
from raibid_api.webhooks.registry import ADAPTERS
from tests.support.webhook_samples import FIXTURE_FILES, GITEA_EVENTS, GITHUB_EVENTS, fixture_bytes

OPEN_SETTINGS = WebhookSettings(allow_unsigned=True)
FUZZ = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
EVENT_TYPES = ["push", "pull_request", "pull_request_sync", "ping", "status", "create", "issues"]
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain", None]

FIXTURE_EVENTS = {name: event_type for name, (_, event_type) in GITEA_EVENTS.items()}
FIXTURE_EVENTS |= GITHUB_EVENTS
FIXTURE_PAYLOADS = {name: orjson.loads(fixture_bytes(name)) for name in FIXTURE_FILES}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
# Values near what the parsers expect, so that mutations reach past the first type check.
plausible_values = json_values | st.sampled_from(
    [
        "0" * 40,
        "0" * 64,
        "a" * 40,
        "b" * 64,
        "refs/heads/main",
        "refs/tags/v1",
        "synchronized",
        "opened",
        "owner/name",
        {},
        [],
        0,
        -1,
        2,
    ]
)


def _headers(forge: str, event_type: str, content_type: str | None) -> dict[str, str]:
    headers = {f"x-{forge}-event": event_type, f"x-{forge}-delivery": "fuzz-1"}
    if forge != "github":
        headers[f"x-{forge}-event-type"] = event_type
    if content_type is not None:
        headers["content-type"] = content_type
    return headers


def _check(forge: str, event_type: str, content_type: str | None, body: bytes) -> None:
    try:
        delivery = read_delivery(
            ADAPTERS[forge], _headers(forge, event_type, content_type), body, OPEN_SETTINGS
        )
    except (InvalidWebhookError, UnsupportedMediaTypeError):
        return
    assert isinstance(delivery, Delivery)
    _check_outcome(delivery.outcome)


def _check_outcome(outcome: object) -> None:
    assert isinstance(outcome, WebhookEvent | Ignored)
    if isinstance(outcome, WebhookEvent):
        assert SHA.fullmatch(outcome.commit)
        assert outcome.ref.startswith("refs/")
        assert outcome.repo.count("/") == 1
        assert (outcome.branch is None) == (outcome.kind == "tag")


def _fixture_examples(test: Any) -> Any:
    for name in FIXTURE_FILES:
        forges = ["github"] if name.startswith("github/") else ["gitea", "forgejo"]
        for forge in forges:
            test = example(forge, FIXTURE_EVENTS[name], "application/json", fixture_bytes(name))(
                test
            )
    return test


@FUZZ
@given(
    st.sampled_from(sorted(ADAPTERS)),
    st.sampled_from(EVENT_TYPES),
    st.sampled_from(CONTENT_TYPES),
    st.binary(max_size=512),
)
@_fixture_examples
def test_arbitrary_bytes_give_a_result_or_a_client_error(
    forge: str, event_type: str, content_type: str | None, body: bytes
) -> None:
    _check(forge, event_type, content_type, body)


@FUZZ
@given(
    st.sampled_from(sorted(ADAPTERS)),
    st.sampled_from(EVENT_TYPES),
    st.booleans(),
    json_values,
)
def test_arbitrary_json_gives_a_result_or_a_client_error(
    forge: str, event_type: str, as_form: bool, value: object
) -> None:
    body = json.dumps(value).encode()
    if as_form:
        _check(forge, event_type, CONTENT_TYPES[1], b"payload=" + quote_plus(body).encode())
    else:
        _check(forge, event_type, CONTENT_TYPES[0], body)


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    name = draw(st.sampled_from(FIXTURE_FILES))
    payload: dict[str, Any] = orjson.loads(fixture_bytes(name))
    for _ in range(draw(st.integers(1, 3))):
        target: Any = payload
        while isinstance(target, dict) and target and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(target)))
            if not isinstance(target[key], dict):
                break
            target = target[key]
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            if draw(st.booleans()):
                target[key] = draw(plausible_values)
            else:
                del target[key]
    return name, FIXTURE_EVENTS[name], payload


@FUZZ
@given(mutated_fixtures())
def test_mutated_fixtures_give_a_result_or_invalid_webhook(
    case: tuple[str, str, dict[str, Any]],
) -> None:
    name, event_type, payload = case
    forges = ["github"] if name.startswith("github/") else ["gitea", "forgejo"]
    for forge in forges:
        try:
            outcome = ADAPTERS[forge].parse(event_type, payload)
        except InvalidWebhookError:
            continue
        _check_outcome(outcome)


def test_unmutated_fixture_payloads_all_parse() -> None:
    for name, payload in FIXTURE_PAYLOADS.items():
        forge = "github" if name.startswith("github/") else "gitea"
        _check_outcome(ADAPTERS[forge].parse(FIXTURE_EVENTS[name], payload))
