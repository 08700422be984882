"""The configured build rules: which events build, and which branches auto-cancel spares.

Per-repository settings (``webhooks.repos["owner/name"]``) refine the global ones:
``events`` and ``auto_cancel_exempt`` replace the global lists when set; a non-empty
``branches`` replaces the global include list; ``exclude_branches`` *adds* to the global
exclusions (a repository cannot build a branch excluded everywhere); ``paths`` exists only per
repository. Patterns are `fnmatch` globs, case-sensitive, where ``*`` also matches ``/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from raibid_api.config import RepoWebhookSettings, WebhookSettings
from raibid_api.webhooks.events import Ignored, IgnoreReason, WebhookEvent, quote_value


def repo_settings(settings: WebhookSettings, repo: str) -> RepoWebhookSettings | None:
    """The per-repository settings of ``owner/name``; names match case-insensitively.

    Forges treat repository names case-insensitively, so ``Owner/Repo`` in the configuration
    applies to a payload naming ``owner/repo``; an exact match wins.
    """
    exact = settings.repos.get(repo)
    if exact is not None:
        return exact
    folded = repo.casefold()
    for name, override in settings.repos.items():
        if name.casefold() == folded:
            return override
    return None


def matches_any(value: str, patterns: Iterable[str]) -> bool:
    """Whether ``value`` matches one of the globs."""
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def _branch_ignored(
    branch: str, settings: WebhookSettings, override: RepoWebhookSettings | None
) -> Ignored | None:
    include = override.branches if override and override.branches else settings.branches
    exclude = [*settings.exclude_branches, *(override.exclude_branches if override else [])]
    if include and not matches_any(branch, include):
        return Ignored(IgnoreReason.BRANCH_EXCLUDED, f"branch {quote_value(branch)} not included")
    if matches_any(branch, exclude):
        return Ignored(IgnoreReason.BRANCH_EXCLUDED, f"branch {quote_value(branch)} excluded")
    return None


def _filtered_branch(event: WebhookEvent) -> str | None:
    """The branch the branch rules look at: a push's branch, the branch a PR merges into."""
    return event.target_branch if event.kind == "pull_request" else event.branch


def _paths_ignored(event: WebhookEvent, override: RepoWebhookSettings | None) -> Ignored | None:
    # Unknown paths (truncated or missing lists) always build: never skip on incomplete data.
    if override is None or not override.paths or event.changed_paths is None:
        return None
    if any(matches_any(path, override.paths) for path in event.changed_paths):
        return None
    return Ignored(IgnoreReason.NO_MATCHING_PATHS, "no changed path matches the repository's paths")


def apply_rules(event: WebhookEvent, settings: WebhookSettings) -> WebhookEvent | Ignored:
    """The event itself when it should build, else why not.

    Checked in order: the event kind (``event_excluded``), the branch (``branch_excluded``;
    tags have none and are not branch-filtered), ``[skip ci]`` (``skip_ci``), the repository's
    path filter (``no_matching_paths``).
    """
    override = repo_settings(settings, event.repo)
    events = override.events if override and override.events is not None else settings.events
    if event.kind not in events:
        return Ignored(IgnoreReason.EVENT_EXCLUDED, f"{event.kind} events are not built")
    branch = _filtered_branch(event)
    ignored = _branch_ignored(branch, settings, override) if branch is not None else None
    if ignored is not None:
        return ignored
    if event.skip_ci:
        return Ignored(IgnoreReason.SKIP_CI, "the commit message asks to skip CI")
    return _paths_ignored(event, override) or event


def is_auto_cancel_exempt(branch: str | None, settings: WebhookSettings, repo: str) -> bool:
    """Whether a new push to ``branch`` of ``repo`` must leave the branch's older jobs alone.

    ``None`` (a tag) is always exempt: tags never supersede one another.
    """
    if branch is None:
        return True
    override = repo_settings(settings, repo)
    if override is not None and override.auto_cancel_exempt is not None:
        patterns = override.auto_cancel_exempt
    else:
        patterns = settings.auto_cancel_exempt
    return matches_any(branch, patterns)
