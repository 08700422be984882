"""The forge-neutral outcome of one webhook delivery: a `WebhookEvent` (one job) or `Ignored`.

Adapters build these from forge payloads; the rules and the intake act on them without knowing
which forge sent the delivery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

EventKind = Literal["push", "tag", "pull_request"]
ForgeName = Literal["gitea", "forgejo", "github"]

_SKIP_CI = re.compile(r"\[(?:skip ci|ci skip)\]", re.IGNORECASE)
_ZERO_SHA = re.compile(r"0+")
_DETAIL_LIMIT = 120


class IgnoreReason(StrEnum):
    """Why a delivery creates no job; the value is the stable ``ignored`` code of the API."""

    PING = "ping"
    TEST_DELIVERY = "test_delivery"
    REF_DELETED = "ref_deleted"
    REF_EVENT = "ref_event"
    STATUS_EVENT = "status_event"
    UNSUPPORTED_EVENT = "unsupported_event"
    UNSUPPORTED_REF = "unsupported_ref"
    PULL_REQUEST_ACTION = "pull_request_action"
    SKIP_CI = "skip_ci"
    EVENT_EXCLUDED = "event_excluded"
    BRANCH_EXCLUDED = "branch_excluded"
    NO_MATCHING_PATHS = "no_matching_paths"


@dataclass(frozen=True, slots=True)
class Ignored:
    """A delivery that creates no job.

    Attributes:
        reason: the stable code (an `IgnoreReason`, which is a ``str``).
        detail: a short human explanation for the delivery journal and ``explain``; it quotes
            at most a few payload values (event type, action, branch), never a secret.
    """

    reason: IgnoreReason
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEvent:
    """A forge event that becomes one job.

    Attributes:
        kind: ``push`` (a branch), ``tag`` or ``pull_request``.
        forge: the forge that sent it.
        repo: ``owner/name`` of the repository the event belongs to (the base repository of a PR).
        clone_url: what the agent clones: the repository, or for a PR the head repository
            (a fork's URL for fork PRs; see `raibid_api.webhooks.payloads`).
        ref: the full ref: ``refs/heads/<b>``, ``refs/tags/<t>`` or, for a PR,
            ``refs/pull/<n>/head``, which lives in the *base* repository (a fork's
            ``clone_url`` has the head commit on ``refs/heads/<branch>`` instead); fetch
            ``commit`` to be safe in both.
        commit: the full sha to build (40 hex, or 64 in SHA-256 repositories), lower case.
            For a tag, the peeled commit, not the tag object.
        branch: the short branch name; for a PR the head branch; ``None`` for tags.
        tag: the short tag name for tags, else ``None``.
        pull_request: the PR number, else ``None``.
        target_branch: the branch a PR merges into, else ``None``.
        action: the forge's PR action (``opened``, ``synchronized``...), else ``None``.
        author: the head commit's author name; ``None`` when the payload has no head commit
            (always for PRs: their payloads carry no commit data).
        pusher: the forge login that pushed or opened/updated the PR.
        message: the subject (first line) of the head commit message; for a PR its title.
        skip_ci: the whole head commit message (for a PR, the title) asks to skip CI.
        changed_paths: every path the pushed commits touched, or ``None`` when the payload's
            lists are not known to be complete (truncated, new branch, force push, tag, PR).
        default_branch: the repository's default branch (``repository.default_branch``), when
            the payload names one.
    """

    kind: EventKind
    forge: ForgeName
    repo: str
    clone_url: str
    ref: str
    commit: str
    branch: str | None = None
    tag: str | None = None
    pull_request: int | None = None
    target_branch: str | None = None
    action: str | None = None
    author: str | None = None
    pusher: str | None = None
    message: str | None = None
    skip_ci: bool = False
    changed_paths: frozenset[str] | None = None
    default_branch: str | None = None

    @property
    def supersede_key(self) -> tuple[str, str, str] | None:
        """What a newer event of the same line of work replaces, for auto-cancel.

        ``(repo, "pull_request", "<n>")`` for a PR, ``(repo, "branch", <branch>)`` for a push,
        ``None`` for a tag (a tag is never superseded).
        """
        if self.pull_request is not None:
            return (self.repo, "pull_request", str(self.pull_request))
        if self.kind == "push" and self.branch is not None:
            return (self.repo, "branch", self.branch)
        return None


_NON_BUILD_EVENTS = {
    "ping": IgnoreReason.PING,
    "create": IgnoreReason.REF_EVENT,
    "delete": IgnoreReason.REF_EVENT,
    "status": IgnoreReason.STATUS_EVENT,
}


def ignore_event(event_type: str) -> Ignored:
    """The answer to an event type that never builds.

    ``ping`` (GitHub), ``create``/``delete`` (a push event carries the build), ``status`` (our
    own commit statuses echoed back) have their own reasons; anything else is unsupported.
    """
    reason = _NON_BUILD_EVENTS.get(event_type, IgnoreReason.UNSUPPORTED_EVENT)
    return Ignored(reason, f"event type {quote_value(event_type)}")


def is_zero_sha(value: str) -> bool:
    """Whether a sha is git's null id (all zeros, of any length: 40, or 64 for SHA-256)."""
    return _ZERO_SHA.fullmatch(value) is not None


def commit_subject(message: str) -> str:
    """The first line of a commit message, without surrounding white space."""
    return message.partition("\n")[0].strip()


def asks_to_skip_ci(message: str) -> bool:
    """Whether a commit message carries ``[skip ci]`` or ``[ci skip]`` (any case, any line)."""
    return _SKIP_CI.search(message) is not None


def quote_value(value: str) -> str:
    """A payload value made safe to quote in an `Ignored` detail: repr'd and length-capped."""
    if len(value) > _DETAIL_LIMIT:
        value = value[:_DETAIL_LIMIT] + "..."
    return repr(value)
