"""The sweep: no ended job's final state is left unreported.

Two lookups, each safe with several replicas. The ended jobs whose final state no forge has
acknowledged yet (given up, or not acknowledged within ``final_deadline_ms``) are taken from
``P:outbox:status:unreported`` by one replica each and queued again. And the ended jobs created
within ``reconcile_window_ms`` whose final state was never queued at all (the replica died between
the job's transition and the listener, or Redis failed between them) are queued for the first
time; only one replica's enqueue of each succeeds.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from raibid_api.domain.jobs import TERMINAL_STATUSES, Clock, Job, JobId, JobStatus
from raibid_api.errors import JobNotFoundError, ServiceUnavailableError
from raibid_api.forges.policy import ReportingPolicy
from raibid_api.forges.routing import ForgeRouter
from raibid_api.forges.states import report_rank
from raibid_api.storage.outbox import StatusOutbox

_log = structlog.get_logger("raibid_api.forges")
_ENDED = sorted(status.value for status in TERMINAL_STATUSES)
_TAKE = 100


class JobLookup(Protocol):
    """Where the sweep reads jobs (the `JobService`)."""

    async def get(self, job_id: JobId) -> Job:
        """The job with its links; raises `JobNotFoundError` when it is gone."""
        ...


class StatusSweep:
    """Finds ended jobs whose final state did not reach the forge, and queues it again."""

    def __init__(
        self, outbox: StatusOutbox, router: ForgeRouter, jobs: JobLookup, clock: Clock,
        policy: ReportingPolicy,
    ) -> None:  # fmt: skip
        self._outbox = outbox
        self._router = router
        self._jobs = jobs
        self._clock = clock
        self._policy = policy

    async def run_once(self) -> int:
        """One sweep; return how many final states it queued."""
        now = self._clock.now_ms()
        deadline = now + self._policy.final_deadline_ms
        queued = 0
        for job_id in await self._outbox.claim_unreported(now, deadline, _TAKE):
            queued += await self._resend(job_id, deadline)
        since = now - self._policy.reconcile_window_ms
        for job_id in await self._outbox.ended_without_final(_ENDED, since):
            queued += await self._report_ended(job_id, deadline)
        await self._outbox.prune_consumers(self._policy.consumer_forget_ms)
        return queued

    async def run(self) -> None:
        """Sweep every ``sweep_interval_s`` until cancelled."""
        while True:
            try:
                queued = await self.run_once()
                if queued:
                    _log.info("status sweep queued final states again", count=queued)
            except ServiceUnavailableError as exc:
                _log.warning("status sweep skipped", reason=exc.message)
            except Exception:
                _log.exception("status sweep failed")
            await asyncio.sleep(self._policy.sweep_interval_s)

    async def _job(self, job_id: str) -> Job | None:
        try:
            return await self._jobs.get(JobId(job_id))
        except JobNotFoundError:
            return None

    async def _resend(self, job_id: str, deadline: int) -> int:
        job = await self._job(job_id)
        report = self._router.report_for(job) if job else None
        if report is None or not report.final:
            await self._outbox.forget_unreported(job_id)
            return 0
        if await self._outbox.enqueue(report, look_again_ms=deadline, mode="resend"):
            return 1
        await self._outbox.forget_unreported(job_id)  # the forge took it meanwhile
        return 0

    async def _report_ended(self, job_id: str, deadline: int) -> int:
        job = await self._job(job_id)
        if job is None or not JobStatus(job["status"]).is_terminal:
            return 0
        report = self._router.report_for(job)
        if report is None:
            await self._outbox.note_final(job_id, report_rank(job))
            return 0
        return int(await self._outbox.enqueue(report, look_again_ms=deadline, mode="final"))
