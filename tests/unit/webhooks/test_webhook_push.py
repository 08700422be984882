"""Push payloads: which pushes build, messages, pushers, changed paths, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from raibid_api.errors import InvalidWebhookError
from raibid_api.webhooks.events import IgnoreReason
from raibid_api.webhooks.payloads import changed_paths
from raibid_api.webhooks.registry import ADAPTERS
from tests.support.webhook_samples import Forge, fixture_payload, parse_event, parse_ignored

SHA256_COMMIT = "3f1b" * 16


def gitea_push() -> dict[str, Any]:
    return fixture_payload("gitea/push-1.json")


def github_push() -> dict[str, Any]:
    return fixture_payload("github/push-1.json")


# -- pushes: which ones build --------------------------------------------------------------


@pytest.mark.parametrize("after", ["0" * 40, "0" * 64, "0000"], ids=["sha1", "sha256", "short"])
@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/tags/v1"])
def test_push_with_all_zero_after_is_a_deletion(after: str, ref: str) -> None:
    payload = gitea_push() | {"after": after, "ref": ref, "head_commit": None, "commits": []}
    assert parse_ignored("gitea", "push", payload) is IgnoreReason.REF_DELETED


def test_sha256_repository_push_builds_the_64_hex_commit() -> None:
    payload = gitea_push() | {"after": SHA256_COMMIT, "before": "1" * 64, "head_commit": None}
    payload["repository"]["object_format_name"] = "sha256"
    assert parse_event("gitea", "push", payload).commit == SHA256_COMMIT


def test_sha256_repository_branch_deletion_with_64_zeros_builds_nothing() -> None:
    payload = gitea_push() | {"before": SHA256_COMMIT, "after": "0" * 64, "head_commit": None}
    assert parse_ignored("forgejo", "push", payload) is IgnoreReason.REF_DELETED


def test_github_deleted_flag_marks_a_deletion() -> None:
    payload = github_push() | {"deleted": True}
    assert parse_ignored("github", "push", payload) is IgnoreReason.REF_DELETED


@pytest.mark.parametrize("sha", ["29be01c073851cf0db0c6a466e396b725a670453", "0" * 40])
def test_push_with_before_equal_to_after_is_a_test_delivery(sha: str) -> None:
    payload = gitea_push() | {"before": sha, "after": sha}
    assert parse_ignored("gitea", "push", payload) is IgnoreReason.TEST_DELIVERY


@pytest.mark.parametrize("ref", ["refs/notes/commits", "refs/pull/1/head", "main"])
def test_push_to_a_ref_that_is_no_branch_or_tag_builds_nothing(ref: str) -> None:
    assert (
        parse_ignored("gitea", "push", gitea_push() | {"ref": ref}) is IgnoreReason.UNSUPPORTED_REF
    )


def test_tag_push_builds_the_peeled_head_commit_not_the_tag_object() -> None:
    tag_object = "a" * 40
    payload = gitea_push() | {"ref": "refs/tags/v1.2", "before": "0" * 40, "after": tag_object}
    event = parse_event("gitea", "push", payload)
    assert event.kind == "tag"
    assert event.tag == "v1.2"
    assert event.branch is None
    assert event.commit == "29be01c073851cf0db0c6a466e396b725a670453"
    assert event.changed_paths is None


def test_tag_push_without_head_commit_builds_after() -> None:
    payload = github_push() | {"ref": "refs/tags/v1", "head_commit": None}
    event = parse_event("github", "push", payload)
    assert event.commit == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert event.author is None
    assert event.message is None


def test_upper_case_sha_is_normalised_to_lower_case() -> None:
    payload = gitea_push() | {"after": "29BE01C073851CF0DB0C6A466E396B725A670453"}
    assert (
        parse_event("gitea", "push", payload).commit == "29be01c073851cf0db0c6a466e396b725a670453"
    )


def test_whole_commit_message_decides_skip_ci_but_only_the_subject_is_kept() -> None:
    payload = gitea_push()
    payload["head_commit"]["message"] = "  Fix the parser  \r\n\nDetails.\n[CI SKIP]\n"
    event = parse_event("gitea", "push", payload)
    assert event.message == "Fix the parser"
    assert event.skip_ci is True


@pytest.mark.parametrize("message", ["[skip ci] docs", "docs [ci skip]"])
def test_skip_ci_markers_are_recognised(message: str) -> None:
    payload = github_push()
    payload["head_commit"]["message"] = message
    assert parse_event("github", "push", payload).skip_ci is True


def test_skip_ci_needs_the_brackets() -> None:
    payload = github_push()
    payload["head_commit"]["message"] = "explain why we skip ci on docs"
    assert parse_event("github", "push", payload).skip_ci is False


def test_gitea_pusher_falls_back_to_the_sender() -> None:
    payload = gitea_push() | {"pusher": None}
    assert parse_event("gitea", "push", payload).pusher == "test-user"


def test_github_pusher_is_the_sender_login_else_the_pusher_name() -> None:
    payload = github_push()
    payload["sender"]["login"] = "octo-login"
    assert parse_event("github", "push", payload).pusher == "octo-login"
    assert parse_event("github", "push", payload | {"sender": None}).pusher == "Codertocat"


# -- changed paths ----------------------------------------------------------------------


def test_truncated_gitea_commit_list_gives_no_changed_paths() -> None:
    payload = gitea_push() | {"total_commits": 20}
    assert parse_event("gitea", "push", payload).changed_paths is None


@pytest.mark.parametrize(
    "change",
    [
        {"total_commits": None},
        {"total_commits": True},
        {"total_commits": 0, "commits": []},
        {"before": "0" * 40},
    ],
    ids=["no-total", "bool-total", "no-commits", "new-branch"],
)
def test_unknown_completeness_gives_no_changed_paths(change: dict[str, Any]) -> None:
    assert parse_event("gitea", "push", gitea_push() | change).changed_paths is None


@pytest.mark.parametrize(
    "bad_commit",
    [{"added": "aa"}, {"removed": None}, {"modified": [1]}, {"added": ["x"] * 3000}],
    ids=["string", "null", "non-string-path", "possibly-cut"],
)
def test_malformed_or_cut_path_lists_give_no_changed_paths(bad_commit: dict[str, Any]) -> None:
    payload = gitea_push()
    payload["commits"][1] |= bad_commit
    assert parse_event("gitea", "push", payload).changed_paths is None


def test_non_object_commit_gives_no_changed_paths() -> None:
    payload = gitea_push()
    payload["commits"][0] = "29be01c"
    assert parse_event("gitea", "push", payload).changed_paths is None


def test_github_push_to_an_existing_branch_lists_changed_paths() -> None:
    payload = github_push() | {"before": "f" * 40, "created": False}
    assert parse_event("github", "push", payload).changed_paths == frozenset({"README.md"})


@pytest.mark.parametrize(
    "change",
    [{"forced": True}, {"commits": []}, {"commits": [{}] * 2048}],
    ids=["force-push", "no-commits", "at-the-limit"],
)
def test_github_push_with_unknowable_paths_gives_none(change: dict[str, Any]) -> None:
    payload = github_push() | {"before": "f" * 40} | change
    assert parse_event("github", "push", payload).changed_paths is None


# -- bad fields -------------------------------------------------------------------------


@pytest.mark.parametrize("forge", ["gitea", "github"])
@pytest.mark.parametrize("field", ["ref", "after", "repository"])
def test_push_without_a_required_field_is_invalid(forge: Forge, field: str) -> None:
    payload = gitea_push() if forge == "gitea" else github_push()
    del payload[field]
    with pytest.raises(InvalidWebhookError, match=field):
        ADAPTERS[forge].parse("push", payload)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("ref",), 1),
        (("ref",), ""),
        (("after",), ["x"]),
        (("after",), "29be01c"),
        (("after",), "g" * 40),
        (("before",), 5),
        (("repository",), []),
        (("repository", "full_name"), None),
        (("repository", "full_name"), "no-slash"),
        (("repository", "full_name"), "a/b/c"),
        (("repository", "clone_url"), 3),
        (("head_commit",), "29be01c"),
        (("head_commit", "id"), "short"),
        (("head_commit", "message"), 1),
        (("head_commit", "author"), "someone"),
        (("head_commit", "author", "name"), 1),
        (("pusher",), "someone"),
    ],
)
def test_push_with_a_wrong_field_type_is_invalid(path: tuple[str, ...], value: object) -> None:
    payload = gitea_push()
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidWebhookError) as caught:
        ADAPTERS["gitea"].parse("push", payload)
    assert ".".join(path) in str(caught.value)


def test_changed_paths_of_a_payload_without_a_commit_list_are_unknown() -> None:
    assert changed_paths({"commits": "many"}) is None
    assert changed_paths({}) is None
