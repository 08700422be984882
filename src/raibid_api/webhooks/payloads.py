"""Push and pull-request payloads into `WebhookEvent`s; Gitea, Forgejo and GitHub share the shape.

Each forge adapter passes in what differs (who pushed, whether ``commits[]`` is complete, which PR
actions build). ``commits[]`` never decides *what* to build, since Gitea truncates it; it only
feeds ``changed_paths`` when the adapter vouches that it is complete.

Pull requests: ``clone_url`` is the head repository's (``head.repo.clone_url``), so fork PRs
clone the fork. Gitea's ``pull_request_sync`` payloads carry ``head.repo_id`` but no ``head.repo``
object, and GitHub sends ``head.repo: null`` once a fork is deleted; then the base repository's
URL is used. It is the right one when the head is in the base repository, and otherwise still
serves the head commit, because both forges keep ``refs/pull/<n>/head`` (the event's ``ref``)
in the base repository.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from raibid_api.webhooks.events import (
    ForgeName,
    Ignored,
    IgnoreReason,
    WebhookEvent,
    asks_to_skip_ci,
    commit_subject,
    is_zero_sha,
    quote_value,
)
from raibid_api.webhooks.fields import (
    JSONObject,
    invalid_field,
    optional_int,
    optional_login,
    optional_object,
    optional_str,
    required_object,
    required_sha,
    required_str,
)

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
# A path list this long may have been cut by the forge; never skip a build on it.
_MAX_TRUSTED_PATHS = 3000


def repository_name(payload: JSONObject) -> str | None:
    """``repository.full_name`` when the payload has one, else ``None``; never raises."""
    repository = payload.get("repository")
    if not isinstance(repository, Mapping):
        return None
    name = repository.get("full_name")
    return name if isinstance(name, str) and name else None


def default_branch(payload: JSONObject) -> str | None:
    """``repository.default_branch`` when it is a usable branch name, else ``None``."""
    repository = payload.get("repository")
    if not isinstance(repository, Mapping):
        return None
    name = repository.get("default_branch")
    if not isinstance(name, str) or not name or len(name) > 255 or not name.isprintable():
        return None
    return name


def _repository(payload: JSONObject) -> tuple[str, str]:
    """(``owner/name``, clone URL) of ``repository``."""
    repository = required_object(payload, "repository")
    full_name = required_str(repository, "full_name", "repository.")
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise invalid_field("repository.full_name", "'owner/name'")
    return full_name, required_str(repository, "clone_url", "repository.")


@dataclass(frozen=True, slots=True)
class _HeadCommit:
    sha: str | None = None
    author: str | None = None
    subject: str | None = None
    skip_ci: bool = False


def _head_commit(payload: JSONObject) -> _HeadCommit:
    head = optional_object(payload, "head_commit")
    if head is None:
        return _HeadCommit()
    sha = required_sha(head, "id", "head_commit.")
    author = optional_object(head, "author", "head_commit.")
    author_name = optional_str(author, "name", "head_commit.author.") if author else None
    message = optional_str(head, "message", "head_commit.") or ""
    return _HeadCommit(sha, author_name, commit_subject(message), asks_to_skip_ci(message))


def _commit_paths(commit: object) -> set[str] | None:
    if not isinstance(commit, Mapping):
        return None
    paths: set[str] = set()
    for key in ("added", "removed", "modified"):
        listed = commit.get(key)
        if not isinstance(listed, list) or len(listed) >= _MAX_TRUSTED_PATHS:
            return None
        if not all(isinstance(path, str) for path in listed):
            return None
        paths.update(listed)
    return paths


def changed_paths(payload: JSONObject) -> frozenset[str] | None:
    """Every path ``commits[]`` lists as added, removed or modified; ``None`` if any is unclear.

    The caller must already know that ``commits[]`` holds every pushed commit.
    """
    commits = payload.get("commits")
    if not isinstance(commits, list) or not commits:
        return None
    paths: set[str] = set()
    for commit in commits:
        listed = _commit_paths(commit)
        if listed is None:
            return None
        paths |= listed
    return frozenset(paths)


def _push_ignored(payload: JSONObject, ref: str, before: str | None, after: str) -> Ignored | None:
    if before == after:
        return Ignored(IgnoreReason.TEST_DELIVERY, "push with before == after (Test Delivery)")
    if is_zero_sha(after) or payload.get("deleted") is True:
        return Ignored(IgnoreReason.REF_DELETED, f"{quote_value(ref)} was deleted")
    if not ref.startswith((BRANCH_PREFIX, TAG_PREFIX)):
        return Ignored(IgnoreReason.UNSUPPORTED_REF, f"{quote_value(ref)} is no branch or tag")
    return None


def parse_push(
    forge: ForgeName, payload: JSONObject, *, pusher: str | None, commits_complete: bool
) -> WebhookEvent | Ignored:
    """A branch or tag push, or why it builds nothing.

    Args:
        forge: the forge that sent it.
        payload: the decoded push payload.
        pusher: the forge login of who pushed (the adapter knows where its forge puts it).
        commits_complete: ``commits[]`` lists every pushed commit, so its paths can be trusted.

    Raises:
        InvalidWebhookError: ``ref``, ``after`` or ``repository`` is missing or mistyped, or a
            sha is not a full sha.
    """
    ref = required_str(payload, "ref")
    after = required_str(payload, "after")
    before = optional_str(payload, "before")
    repo, clone_url = _repository(payload)
    ignored = _push_ignored(payload, ref, before, after)
    if ignored is not None:
        return ignored
    after = required_sha(payload, "after")
    head = _head_commit(payload)
    is_tag = ref.startswith(TAG_PREFIX)
    # A new branch's commits[] is relative to nothing in particular: no trustworthy paths.
    trust_paths = commits_complete and not is_tag and before is not None and not is_zero_sha(before)
    return WebhookEvent(
        kind="tag" if is_tag else "push",
        forge=forge,
        repo=repo,
        clone_url=clone_url,
        ref=ref,
        # For an annotated tag `after` is the tag object; head_commit is the commit it peels to.
        commit=(head.sha or after) if is_tag else after,
        branch=None if is_tag else ref.removeprefix(BRANCH_PREFIX),
        tag=ref.removeprefix(TAG_PREFIX) if is_tag else None,
        author=head.author,
        pusher=pusher,
        message=head.subject,
        skip_ci=head.skip_ci,
        changed_paths=changed_paths(payload) if trust_paths else None,
        default_branch=default_branch(payload),
    )


def parse_pull_request(
    forge: ForgeName, payload: JSONObject, *, build_actions: Collection[str]
) -> WebhookEvent | Ignored:
    """A pull request opened, reopened or updated, or why it builds nothing.

    Args:
        forge: the forge that sent it.
        payload: the decoded pull-request payload.
        build_actions: the ``action`` values that build (they differ per forge).

    Raises:
        InvalidWebhookError: a field needed for the job is missing or mistyped.
    """
    action = required_str(payload, "action")
    if action not in build_actions:
        return Ignored(
            IgnoreReason.PULL_REQUEST_ACTION, f"pull request action {quote_value(action)}"
        )
    number = optional_int(payload, "number")
    if number is None or number < 1:
        raise invalid_field("number", "a positive integer")
    pull = required_object(payload, "pull_request")
    head = required_object(pull, "head", "pull_request.")
    head_repo = optional_object(head, "repo", "pull_request.head.")
    repo, base_clone_url = _repository(payload)
    title = optional_str(pull, "title", "pull_request.") or ""
    return WebhookEvent(
        kind="pull_request",
        forge=forge,
        repo=repo,
        clone_url=(
            required_str(head_repo, "clone_url", "pull_request.head.repo.")
            if head_repo is not None
            else base_clone_url
        ),
        ref=f"refs/pull/{number}/head",
        commit=required_sha(head, "sha", "pull_request.head."),
        branch=required_str(head, "ref", "pull_request.head."),
        pull_request=number,
        target_branch=required_str(
            required_object(pull, "base", "pull_request."), "ref", "pull_request.base."
        ),
        action=action,
        pusher=optional_login(payload, "sender"),
        message=commit_subject(title),
        skip_ci=asks_to_skip_ci(title),
        default_branch=default_branch(payload),
    )
