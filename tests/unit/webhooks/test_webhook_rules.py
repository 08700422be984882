"""Build rules (events, branches, skip ci, paths) and the auto-cancel exemption."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from raibid_api.webhooks.events import (
    Ignored,
    IgnoreReason,
    WebhookEvent,
    asks_to_skip_ci,
    commit_subject,
    is_zero_sha,
    quote_value,
)
from raibid_api.webhooks.rules import apply_rules, is_auto_cancel_exempt
from tests.support.webhook_samples import make_settings

REPO = "team/app"
PUSH = WebhookEvent(
    kind="push",
    forge="gitea",
    repo=REPO,
    clone_url="https://git.example/team/app.git",
    ref="refs/heads/feature/x",
    branch="feature/x",
    commit="a" * 40,
    changed_paths=frozenset({"src/app.py", "README.md"}),
)
TAG = dataclasses.replace(
    PUSH, kind="tag", ref="refs/tags/v1", branch=None, tag="v1", changed_paths=None
)
PULL = dataclasses.replace(
    PUSH,
    kind="pull_request",
    ref="refs/pull/7/head",
    pull_request=7,
    target_branch="main",
    changed_paths=None,
)


def _reason(event: WebhookEvent, **settings: Any) -> IgnoreReason | None:
    outcome = apply_rules(event, make_settings(**settings))
    if isinstance(outcome, Ignored):
        return outcome.reason
    assert outcome is event
    return None


@pytest.mark.parametrize("event", [PUSH, TAG, PULL], ids=["push", "tag", "pull_request"])
def test_default_settings_build_every_event(event: WebhookEvent) -> None:
    assert _reason(event) is None


def test_event_kind_not_configured_is_excluded() -> None:
    assert _reason(TAG, events=["push", "pull_request"]) is IgnoreReason.EVENT_EXCLUDED
    assert _reason(PUSH, events=["push", "pull_request"]) is None


def test_repository_events_replace_the_global_list() -> None:
    repos = {REPO: {"events": ["tag"]}}
    assert _reason(PUSH, repos=repos) is IgnoreReason.EVENT_EXCLUDED
    assert _reason(TAG, events=["push"], repos=repos) is None


@pytest.mark.parametrize(
    ("branches", "exclude", "reason"),
    [
        (["main"], [], IgnoreReason.BRANCH_EXCLUDED),
        (["feature/*"], [], None),
        (["Feature/*"], [], IgnoreReason.BRANCH_EXCLUDED),
        ([], ["feature/*"], IgnoreReason.BRANCH_EXCLUDED),
        (["*"], ["*/x"], IgnoreReason.BRANCH_EXCLUDED),
        ([], ["feat"], None),
    ],
)
def test_global_branch_globs(
    branches: list[str], exclude: list[str], reason: IgnoreReason | None
) -> None:
    assert _reason(PUSH, branches=branches, exclude_branches=exclude) is reason


def test_repository_branches_replace_the_global_include_list() -> None:
    repos = {REPO: {"branches": ["feature/*"]}}
    assert _reason(PUSH, branches=["main"], repos=repos) is None


def test_repository_exclusions_add_to_the_global_ones() -> None:
    repos = {REPO: {"exclude_branches": ["wip/*"]}}
    assert _reason(PUSH, exclude_branches=["feature/*"], repos=repos) is (
        IgnoreReason.BRANCH_EXCLUDED
    )
    wip = dataclasses.replace(PUSH, branch="wip/y", ref="refs/heads/wip/y")
    assert _reason(wip, repos=repos) is IgnoreReason.BRANCH_EXCLUDED


def test_pull_request_branch_rules_look_at_the_target_branch() -> None:
    assert _reason(PULL, branches=["main"]) is None
    assert _reason(PULL, exclude_branches=["main"]) is IgnoreReason.BRANCH_EXCLUDED


def test_tags_are_not_branch_filtered() -> None:
    assert _reason(TAG, branches=["main"]) is None


def test_skip_ci_event_builds_nothing() -> None:
    assert _reason(dataclasses.replace(PUSH, skip_ci=True)) is IgnoreReason.SKIP_CI


def test_event_exclusion_is_reported_before_skip_ci() -> None:
    event = dataclasses.replace(TAG, skip_ci=True)
    assert _reason(event, events=["push"]) is IgnoreReason.EVENT_EXCLUDED


@pytest.mark.parametrize(
    ("paths", "reason"),
    [
        (["src/*"], None),
        (["*.md"], None),
        (["docs/*", "deploy/*"], IgnoreReason.NO_MATCHING_PATHS),
        ([], None),
    ],
)
def test_repository_path_filter(paths: list[str], reason: IgnoreReason | None) -> None:
    assert _reason(PUSH, repos={REPO: {"paths": paths}}) is reason


def test_unknown_changed_paths_always_build() -> None:
    event = dataclasses.replace(PUSH, changed_paths=None)
    assert _reason(event, repos={REPO: {"paths": ["docs/*"]}}) is None


def test_push_that_changed_no_path_is_filtered_out() -> None:
    event = dataclasses.replace(PUSH, changed_paths=frozenset())
    assert _reason(event, repos={REPO: {"paths": ["*"]}}) is IgnoreReason.NO_MATCHING_PATHS


def test_repository_settings_match_the_name_case_insensitively() -> None:
    assert _reason(PUSH, repos={"Team/App": {"events": ["tag"]}}) is IgnoreReason.EVENT_EXCLUDED


def test_main_and_master_are_auto_cancel_exempt_by_default() -> None:
    settings = make_settings()
    assert is_auto_cancel_exempt("main", settings, REPO)
    assert is_auto_cancel_exempt("master", settings, REPO)
    assert not is_auto_cancel_exempt("feature/x", settings, REPO)


def test_tags_are_always_auto_cancel_exempt() -> None:
    assert is_auto_cancel_exempt(None, make_settings(auto_cancel_exempt=[]), REPO)


def test_repository_auto_cancel_exemptions_replace_the_global_ones() -> None:
    settings = make_settings(repos={REPO: {"auto_cancel_exempt": ["release/*"]}})
    assert is_auto_cancel_exempt("release/1.0", settings, REPO)
    assert not is_auto_cancel_exempt("main", settings, REPO)
    assert is_auto_cancel_exempt("main", settings, "other/repo")
    nothing = make_settings(repos={REPO: {"auto_cancel_exempt": []}})
    assert not is_auto_cancel_exempt("main", nothing, REPO)


def test_supersede_key_groups_a_branch_or_a_pull_request() -> None:
    assert PUSH.supersede_key == (REPO, "branch", "feature/x")
    assert PULL.supersede_key == (REPO, "pull_request", "7")
    assert TAG.supersede_key is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0" * 40, True), ("0" * 64, True), ("0", True), ("", False), ("0" * 39 + "1", False)],
)
def test_zero_sha_is_all_zeros_of_any_length(value: str, expected: bool) -> None:
    assert is_zero_sha(value) is expected


def test_message_helpers() -> None:
    assert commit_subject("\n") == ""
    assert commit_subject(" subject \nbody") == "subject"
    assert asks_to_skip_ci("body\n[Skip CI]")
    assert not asks_to_skip_ci("[skipci]")
    assert quote_value("x" * 500) == repr("x" * 120 + "...")
