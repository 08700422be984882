"""Every recorded payload, signed and delivered as its forge would, checked field by field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from raibid_api.config import WebhookSettings
from raibid_api.webhooks.events import Ignored, WebhookEvent
from raibid_api.webhooks.intake import read_delivery
from raibid_api.webhooks.registry import ADAPTERS
from raibid_api.webhooks.signatures import SignatureResult
from tests.support.webhook_expectations import CASES, EXPECTED, REPOS
from tests.support.webhook_samples import (
    FIXTURE_FILES,
    Forge,
    fixture_delivery,
    fixture_payload,
    make_settings,
    parse_event,
)


def _expected_for(forge: Forge, name: str) -> WebhookEvent | Ignored:
    expected = EXPECTED[name]
    if isinstance(expected, WebhookEvent):
        return dataclasses.replace(expected, forge=forge)
    return expected


def test_every_fixture_file_has_an_expectation(fixtures_dir: Path) -> None:
    on_disk = {p.relative_to(fixtures_dir).as_posix() for p in fixtures_dir.rglob("*.json")}
    assert on_disk == set(EXPECTED) == set(FIXTURE_FILES)
    assert {name for _, name in CASES} == on_disk


@pytest.mark.parametrize(("forge", "name"), CASES, ids=[f"{f}:{n}" for f, n in CASES])
def test_signed_fixture_delivery_yields_the_recorded_event(forge: Forge, name: str) -> None:
    headers, body = fixture_delivery(forge, name)
    expected = _expected_for(forge, name)
    repo = expected.repo if isinstance(expected, WebhookEvent) else REPOS[name]
    # a path filter that takes every path: the delivery's file lists are read, nothing filtered
    settings = make_settings(repos={repo: {"paths": ["**"]}})

    delivery = read_delivery(ADAPTERS[forge], headers, body, settings)

    outcome = delivery.outcome
    assert delivery.forge == forge
    assert delivery.signature is SignatureResult.VALID
    assert delivery.delivery_id == headers[f"x-{forge}-delivery"]
    if isinstance(expected, Ignored):
        assert isinstance(outcome, Ignored)
        assert outcome.reason == expected.reason
        assert delivery.repo == REPOS[name]
        return
    assert isinstance(outcome, WebhookEvent)
    assert delivery.repo == expected.repo
    for field in (
        "kind",
        "forge",
        "repo",
        "clone_url",
        "ref",
        "branch",
        "tag",
        "commit",
        "pull_request",
        "target_branch",
        "action",
        "author",
        "pusher",
        "message",
        "skip_ci",
        "changed_paths",
    ):
        assert getattr(outcome, field) == getattr(expected, field), field
    assert outcome == expected


@pytest.mark.parametrize(("forge", "name"), CASES, ids=[f"{f}:{n}" for f, n in CASES])
def test_without_a_path_filter_the_file_lists_are_not_read(
    forge: Forge, name: str, signed_settings: WebhookSettings
) -> None:
    headers, body = fixture_delivery(forge, name)

    outcome = read_delivery(ADAPTERS[forge], headers, body, signed_settings).outcome

    expected = _expected_for(forge, name)
    if isinstance(expected, WebhookEvent):
        assert outcome == dataclasses.replace(expected, changed_paths=None)
    else:
        assert isinstance(outcome, Ignored)
        assert outcome.reason == expected.reason


@pytest.mark.parametrize("value", [None, 7, "", "x" * 256, "ma\nin", ["main"]])
def test_an_unusable_default_branch_is_left_out(value: object) -> None:
    payload = fixture_payload("gitea/push-1.json")
    payload["repository"]["default_branch"] = value
    event = parse_event("gitea", "push", payload)
    assert event.default_branch is None
    assert event.branch == "main"
