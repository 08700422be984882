"""Commit status reporting as one part: the job listener, the worker and the sweep, wired.

The listener runs inside the request or agent call that changed the job, so it only appends the
report to the outbox (one Redis script) and never calls a forge; the worker does the HTTP calls.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Coroutine
from typing import Any

import structlog

from raibid_api.config import ForgeSettings
from raibid_api.domain.jobs import Clock, Job, JobStatus
from raibid_api.errors import ServiceUnavailableError
from raibid_api.forges.clients import GiteaStatusClient, GitHubStatusClient, StatusReporter
from raibid_api.forges.policy import ReportingPolicy
from raibid_api.forges.routing import ForgeRouter, ForgeTarget
from raibid_api.forges.states import report_rank
from raibid_api.forges.sweep import JobLookup, StatusSweep
from raibid_api.forges.worker import StatusWorker
from raibid_api.storage.outbox import StatusOutbox

_log = structlog.get_logger("raibid_api.forges")
FORGES = ("gitea", "forgejo", "github")


def consumer_name() -> str:
    """A name for this process in the outbox's consumer group, unique across restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def configured_targets(settings: ForgeSettings, timeout_s: float) -> list[ForgeTarget]:
    """One target per forge that has both a URL and a token."""
    targets = []
    for name in FORGES:
        api = getattr(settings, name)
        if not (api.url and api.token):
            continue
        client = GitHubStatusClient if name == "github" else GiteaStatusClient
        reporter: StatusReporter = client(
            api.url, api.token.get_secret_value(), timeout_s=timeout_s
        )
        targets.append(ForgeTarget(name, reporter, api.context, api.url))
    return targets


class StatusListener:
    """Queues a report of every status change of a job (registered on the `JobService`)."""

    def __init__(
        self, outbox: StatusOutbox, router: ForgeRouter, clock: Clock, policy: ReportingPolicy
    ) -> None:
        self._outbox = outbox
        self._router = router
        self._clock = clock
        self._policy = policy

    async def __call__(self, job: Job) -> None:
        """Queue the report of ``job``'s new status; never raises.

        The job has changed already: a failure here must not fail the caller's request. A final
        state that could not be queued is found by the sweep.
        """
        try:
            await self._queue(job)
        except ServiceUnavailableError as exc:
            _log.warning("status report not queued", job_id=job.get("id"), reason=exc.message)
        except Exception:
            _log.exception("status report not queued", job_id=job.get("id"))

    async def _queue(self, job: Job) -> None:
        report = self._router.report_for(job)
        if report is not None:
            deadline = self._clock.now_ms() + self._policy.final_deadline_ms
            await self._outbox.enqueue(report, look_again_ms=deadline)
        elif JobStatus(job["status"]).is_terminal:
            await self._outbox.note_final(str(job["id"]), report_rank(job))


class StatusReporting:
    """The listener to register on the job service, and the loops every replica runs."""

    def __init__(
        self, outbox: StatusOutbox, router: ForgeRouter, jobs: JobLookup, clock: Clock,
        policy: ReportingPolicy | None = None,
    ) -> None:  # fmt: skip
        policy = policy or ReportingPolicy()
        self._router = router
        self.listener = StatusListener(outbox, router, clock, policy)
        self.worker = StatusWorker(outbox, router, clock, policy)
        self.sweep = StatusSweep(outbox, router, jobs, clock, policy)

    @classmethod
    def from_settings(
        cls, settings: ForgeSettings, outbox: StatusOutbox, jobs: JobLookup, clock: Clock,
        policy: ReportingPolicy | None = None,
    ) -> StatusReporting | None:  # fmt: skip
        """Reporting to every forge configured with a URL and a token; None when there is none."""
        policy = policy or ReportingPolicy()
        targets = configured_targets(settings, policy.http_timeout_s)
        if not targets:
            return None
        _log.info("commit statuses reported", forges=[t.name for t in targets])
        return cls(outbox, ForgeRouter(targets), jobs, clock, policy)

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        """The worker and the sweep; the forge clients close when the worker is cancelled."""
        return [self._work(), self.sweep.run()]

    async def _work(self) -> None:
        try:
            await self.worker.run()
        finally:
            await self._router.aclose()
