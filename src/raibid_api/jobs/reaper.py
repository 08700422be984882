"""The reaper: lost agents' jobs go back in the queue (or fail), overlong jobs time out.

Every move is a compare-and-set on "running", so several server replicas can reap at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from raibid_api.domain.jobs import AttemptGuard, Clock, JobId, JobStatus
from raibid_api.errors import (
    JobNotFoundError,
    JobTokenError,
    ServiceUnavailableError,
    TransitionConflictError,
)
from raibid_api.jobs.service import JobService
from raibid_api.observability import metrics
from raibid_api.storage.agent_store import AgentStore, Lease
from raibid_api.storage.job_store import JobStore

_log = structlog.get_logger("raibid_api.reaper")
AGENT_FORGET_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class ReaperLimits:
    """When a job counts as lost or overlong."""

    timeout_ms: int
    max_attempts: int


class Reaper:
    """One sweep over the running jobs, and the loop that repeats it."""

    def __init__(
        self, jobs: JobService, store: JobStore, agents: AgentStore, clock: Clock,
        limits: ReaperLimits,
    ) -> None:  # fmt: skip
        self._jobs = jobs
        self._store = store
        self._agents = agents
        self._clock = clock
        self._limits = limits

    async def reap_once(self) -> int:
        """Requeue or fail jobs whose lease ran out, fail overlong ones; return how many moved.

        Every move is guarded by the attempt the sweep saw (its job token, and for a lost agent
        a lease that ended before now): a job requeued and claimed again meanwhile, or whose
        agent's heartbeat just came in, is left alone.
        """
        moved = 0
        now = self._clock.now_ms()
        for lease in await self._agents.running_leases():
            try:
                if lease.until_ms < now:
                    moved += await self._lost(lease, now)
                elif lease.started_ms is not None and (
                    lease.started_ms + self._limits.timeout_ms < now
                ):
                    moved += await self._timed_out(lease)
            except (TransitionConflictError, JobTokenError, JobNotFoundError):
                continue  # another replica, the agent or the job's end got there first
        await self._forget_agents(now)
        return moved

    async def _timed_out(self, lease: Lease) -> int:
        job_id = JobId(lease.job_id)
        job = await self._store.get(job_id)
        if job is None or job["status"] != JobStatus.RUNNING:
            return 0
        limit = f"{self._limits.timeout_ms / 1000:g}s"
        note = (f"[raibid] attempt {job['attempt']} on agent {job['agent_id']} ran longer than "
                f"the job timeout ({limit}); its job failed")  # fmt: skip
        await self._jobs.finish(
            job_id, JobStatus.FAILED, reason="timeout", expect=(JobStatus.RUNNING,),
            guard=AttemptGuard(lease.token_hash), note=("stderr", note),
        )  # fmt: skip
        return 1

    async def _lost(self, lease: Lease, now: int) -> int:
        job_id = JobId(lease.job_id)
        job = await self._store.get(job_id)
        if job is None or job["status"] != JobStatus.RUNNING:
            return 0
        guard = AttemptGuard(lease.token_hash, lease_ended_by=now)
        attempt = job["attempt"]
        lost = f"the agent of attempt {attempt} ({job['agent_id']}) was lost"
        if attempt >= self._limits.max_attempts:
            last = f"that was the last of {self._limits.max_attempts} attempts, so the job failed"
            await self._jobs.finish(
                job_id, JobStatus.FAILED, reason="agent_lost", expect=(JobStatus.RUNNING,),
                guard=guard, note=("stderr", f"[raibid] {lost}; {last}"),
            )  # fmt: skip
            return 1
        cleared = dict.fromkeys(
            ("agent_id", "started_at", "_started_ms", "_lease_until", "_token", "_log_count",
             "_first_log_ms", "_completed"),
        )  # fmt: skip
        after = await self._store.transition(
            job, JobStatus.PENDING, self._clock.now_ms(),
            cleared | {"attempt": attempt + 1}, requeue=True, guard=guard,
            note=("stderr", f"[raibid] attempt {attempt + 1}: {lost}; the job is queued again"),
        )  # fmt: skip
        _log.info("requeued a job whose agent was lost", job_id=job_id, attempt=after["attempt"])
        metrics.REAPER_REQUEUES.inc()
        await self._jobs.announce(after)
        return 1

    async def _forget_agents(self, now: int) -> None:
        stale = [
            str(agent["agent_id"]) for agent in await self._agents.agents()
            if now - int(str(agent.get("last_seen_ms", 0))) > AGENT_FORGET_MS
        ]  # fmt: skip
        await self._agents.forget_agents(stale)

    async def run(self, interval: float) -> None:
        """Sweep every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.reap_once()
            except ServiceUnavailableError as exc:
                _log.warning("reaper sweep skipped", reason=exc.message)
            await asyncio.sleep(interval)
