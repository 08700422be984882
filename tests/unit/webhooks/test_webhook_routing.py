"""Event routing, pull-request payloads, delivery ids and event-type headers."""

from __future__ import annotations

import pytest

from raibid_api.errors import InvalidWebhookError
from raibid_api.webhooks.events import Ignored, IgnoreReason, WebhookEvent
from raibid_api.webhooks.intake import read_delivery
from raibid_api.webhooks.registry import ADAPTERS
from tests.support.webhook_samples import (
    Forge,
    delivery_headers,
    fixture_bytes,
    fixture_payload,
    make_settings,
    parse_event,
    parse_ignored,
)

# -- pull requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forge", "event_type", "action"),
    [
        ("gitea", "pull_request", "opened"),
        ("gitea", "pull_request", "reopened"),
        ("gitea", "pull_request_sync", "synchronized"),
        ("forgejo", "pull_request_sync", "synchronized"),
        ("github", "pull_request", "opened"),
        ("github", "pull_request", "reopened"),
        ("github", "pull_request", "synchronize"),
    ],
)
def test_pull_request_actions_that_build(forge: Forge, event_type: str, action: str) -> None:
    name = "github/pull_request-1.json" if forge == "github" else "gitea/pull_request-1.json"
    event = parse_event(forge, event_type, fixture_payload(name) | {"action": action})
    assert event.action == action
    assert event.kind == "pull_request"


@pytest.mark.parametrize(
    ("forge", "action"),
    [
        ("gitea", "closed"),
        ("gitea", "edited"),
        ("gitea", "label_updated"),
        ("gitea", "synchronize"),
        ("github", "synchronized"),
        ("github", "labeled"),
        ("github", "closed"),
    ],
)
def test_pull_request_actions_that_do_not_build(forge: Forge, action: str) -> None:
    name = "github/pull_request-1.json" if forge == "github" else "gitea/pull_request-1.json"
    payload = fixture_payload(name) | {"action": action}
    assert parse_ignored(forge, "pull_request", payload) is IgnoreReason.PULL_REQUEST_ACTION


def test_fork_pull_request_without_head_repo_clones_the_base_repository() -> None:
    payload = fixture_payload("gitea/pull_request-1.json")
    del payload["pull_request"]["head"]["repo"]
    event = parse_event("gitea", "pull_request", payload)
    # The head commit is reachable there through refs/pull/2/head.
    assert event.clone_url == "http://localhost:3000/example/example.git"
    assert event.ref == "refs/pull/2/head"


def test_github_pull_request_from_a_deleted_fork_clones_the_base_repository() -> None:
    payload = fixture_payload("github/pull_request-1.json")
    payload["pull_request"]["head"]["repo"] = None
    assert parse_event("github", "pull_request", payload).clone_url == (
        "https://github.com/Codertocat/Hello-World.git"
    )


def test_pull_request_title_is_the_message_and_can_skip_ci() -> None:
    payload = fixture_payload("gitea/pull_request-2.json")
    payload["pull_request"]["title"] = "WIP [skip ci]\nmore"
    event = parse_event("gitea", "pull_request_sync", payload)
    assert event.message == "WIP [skip ci]"
    assert event.skip_ci is True


# -- event routing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forge", "event_type", "reason"),
    [
        ("gitea", "create", IgnoreReason.REF_EVENT),
        ("gitea", "delete", IgnoreReason.REF_EVENT),
        ("gitea", "status", IgnoreReason.STATUS_EVENT),
        ("gitea", "issues", IgnoreReason.UNSUPPORTED_EVENT),
        ("gitea", "pull_request_label", IgnoreReason.UNSUPPORTED_EVENT),
        ("forgejo", "action_run_failure", IgnoreReason.UNSUPPORTED_EVENT),
        ("github", "ping", IgnoreReason.PING),
        ("github", "status", IgnoreReason.STATUS_EVENT),
        ("github", "delete", IgnoreReason.REF_EVENT),
        ("github", "pull_request_sync", IgnoreReason.UNSUPPORTED_EVENT),
        ("github", "workflow_run", IgnoreReason.UNSUPPORTED_EVENT),
    ],
)
def test_event_types_that_never_build(forge: Forge, event_type: str, reason: IgnoreReason) -> None:
    assert parse_ignored(forge, event_type, {"repository": {"full_name": "a/b"}}) is reason


def test_ignored_detail_quotes_the_event_type_capped() -> None:
    outcome = ADAPTERS["gitea"].parse("x" * 500, {})
    assert isinstance(outcome, Ignored)
    assert outcome.detail.startswith("event type 'xxx")
    assert len(outcome.detail) < 200


def test_gitea_routes_on_the_exact_event_type_not_the_grouped_one() -> None:
    headers = {"x-gitea-event": "pull_request", "x-gitea-event-type": "pull_request_sync"}
    assert ADAPTERS["gitea"].event_type(headers) == "pull_request_sync"


def test_gitea_without_event_type_header_falls_back_to_the_grouped_event() -> None:
    body = fixture_bytes("gitea/pull_request-2.json")
    headers = delivery_headers("gitea", "pull_request_sync", body)
    del headers["x-gitea-event-type"]
    delivery = read_delivery(ADAPTERS["gitea"], headers, body, make_settings())
    assert delivery.event_type == "pull_request"
    assert isinstance(delivery.outcome, WebhookEvent)
    assert delivery.outcome.action == "synchronized"


def test_forgejo_prefers_its_own_headers_and_falls_back_to_gitea_ones() -> None:
    forgejo = ADAPTERS["forgejo"]
    headers = {"x-forgejo-event-type": "push", "x-gitea-event-type": "status"}
    assert forgejo.event_type(headers) == "push"
    assert forgejo.event_type({"x-gitea-event": "push"}) == "push"
    assert forgejo.delivery_id({"x-gitea-delivery": "d-1"}) == "d-1"
    assert forgejo.delivery_id({"x-forgejo-delivery": "f-1", "x-gitea-delivery": "g-1"}) == "f-1"


@pytest.mark.parametrize("forge", ["gitea", "forgejo", "github"])
def test_delivery_without_event_type_header_is_invalid(forge: Forge) -> None:
    body = fixture_bytes("gitea/push-1.json")
    headers = {k: v for k, v in delivery_headers(forge, "push", body).items() if "event" not in k}
    with pytest.raises(InvalidWebhookError):
        read_delivery(ADAPTERS[forge], headers, body, make_settings())


@pytest.mark.parametrize("value", ["x" * 129, "a b", "../x", "{slot}", "-leading"])
def test_malformed_delivery_id_is_invalid(value: str) -> None:
    with pytest.raises(InvalidWebhookError):
        ADAPTERS["github"].delivery_id({"x-github-delivery": value})


def test_missing_delivery_id_is_none() -> None:
    assert ADAPTERS["gitea"].delivery_id({"x-github-delivery": "abc"}) is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("action",), None),
        (("number",), None),
        (("number",), "2"),
        (("number",), True),
        (("number",), 0),
        (("pull_request",), None),
        (("pull_request", "head"), None),
        (("pull_request", "head", "sha"), None),
        (("pull_request", "head", "ref"), 1),
        (("pull_request", "head", "repo"), "fork"),
        (("pull_request", "head", "repo", "clone_url"), None),
        (("pull_request", "base"), []),
        (("pull_request", "base", "ref"), None),
        (("pull_request", "title"), 7),
        (("sender",), 1),
    ],
)
def test_pull_request_with_a_wrong_field_is_invalid(path: tuple[str, ...], value: object) -> None:
    payload = fixture_payload("gitea/pull_request-1.json")
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidWebhookError) as caught:
        ADAPTERS["gitea"].parse("pull_request", payload)
    assert ".".join(path) in str(caught.value)
