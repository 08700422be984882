"""Auto-cancel: a new push to a branch or pull request cancels the job it makes pointless.

Each line of work (a repository's branch, or its pull request) has one newest webhook job. A new
job takes that place and cancels the job it replaces, with reason ``superseded``, when it is
still pending (or running too, with ``webhooks.auto_cancel_running``). So every job of a line but
the newest is cancelled by its successor. Taking the place and cancelling a pending job happen
in the Redis step that creates the new job (`Supersession`); a running job is cancelled after
it, here (`cancel`).

Tags never supersede. Branches matching ``auto_cancel_exempt`` (e.g. ``main``, whose every
commit should be built) keep their jobs; pull requests are told apart by number, so the
exemption, which names branches, does not apply to them.

"Newer" is by creation time: of two deliveries handled at once, the later job always wins, even
when the earlier one reaches Redis last (it then cancels itself).
"""

from __future__ import annotations

import structlog

from raibid_api.config import WebhookSettings
from raibid_api.domain.jobs import JobId, JobStatus, Supersession
from raibid_api.errors import JobNotFoundError, TransitionConflictError
from raibid_api.jobs.service import JobService
from raibid_api.webhooks.events import WebhookEvent
from raibid_api.webhooks.rules import is_auto_cancel_exempt

SUPERSEDED = "superseded"
_log = structlog.get_logger("raibid_api.webhooks")


class AutoCancel:
    """Cancels the job a new webhook job supersedes."""

    def __init__(self, jobs: JobService, settings: WebhookSettings) -> None:
        self._jobs = jobs
        self._settings = settings

    @property
    def statuses(self) -> tuple[JobStatus, ...]:
        """The statuses a superseded job is cancelled from."""
        if self._settings.auto_cancel_running:
            return (JobStatus.PENDING, JobStatus.RUNNING)
        return (JobStatus.PENDING,)

    def line_of(self, event: WebhookEvent) -> Supersession | None:
        """The line of work a job made from ``event`` supersedes in, or ``None``."""
        key = event.supersede_key
        if not self._settings.auto_cancel or key is None:
            return None
        repo, kind, name = key
        if kind == "branch" and is_auto_cancel_exempt(event.branch, self._settings, repo):
            return None
        return Supersession(
            repo, f"{kind}:{name}", SUPERSEDED, cancel_running=self._settings.auto_cancel_running
        )

    async def cancel(self, superseded: JobId, by: JobId) -> bool:
        """Cancel ``superseded`` (left by the create step: running, or older) if it may be.

        Returns:
            whether it was cancelled: not when it has ended meanwhile, vanished, or is running
            and ``auto_cancel_running`` is off.

        Raises:
            ServiceUnavailableError: Redis does not answer; the new job exists already, so the
                caller reports it and moves on.
        """
        try:
            await self._jobs.finish(
                superseded, JobStatus.CANCELLED, reason=SUPERSEDED, expect=self.statuses
            )
        except (TransitionConflictError, JobNotFoundError):
            return False
        _log.debug("superseded running job cancelled", by=by, cancelled=superseded)
        return True
