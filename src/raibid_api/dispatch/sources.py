"""What the dispatcher needs to know about CI jobs: which wait, and which agent holds which job."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Protocol

from raibid_api.domain.jobs import Job, JobFilter, JobStatus, parse_job_id
from raibid_api.errors import JobNotFoundError
from raibid_api.jobs.service import JobService

PAGE = 200
# Per status and pass. A deeper queue is worked off from its newest jobs, which changes nothing:
# Job names are only nominal, agents claim the oldest job.
MAX_JOBS = 1000


@dataclass(frozen=True, order=True)
class PendingJob:
    """A CI job waiting for an agent (ordered oldest first)."""

    created_at: str
    job_id: str
    attempt: int


class JobSource(Protocol):
    """Where the dispatcher reads the queue.

    Each raises `ServiceUnavailableError` when Redis does not answer.
    """

    async def pending_jobs(self) -> list[PendingJob]:
        """The jobs waiting for an agent, oldest first."""
        ...

    async def holdings(self) -> dict[str, str]:
        """Which agent (by id) holds which job, for the agents that hold one."""
        ...

    async def cancelled(self, job_ids: Collection[str]) -> set[str]:
        """Which of ``job_ids`` were cancelled (or are gone): their agents have nothing to do."""
        ...


class ServiceJobSource:
    """`JobSource` over the job service: the pending and the running jobs."""

    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    async def _each(self, status: JobStatus) -> AsyncIterator[Job]:
        cursor: str | None = None
        for _ in range(MAX_JOBS // PAGE):
            page = await self._jobs.list(JobFilter(status=status), cursor, PAGE)
            for job in page.jobs:
                yield job
            cursor = page.next_cursor
            if cursor is None:
                return

    async def pending_jobs(self) -> list[PendingJob]:
        """The jobs waiting for an agent, oldest first."""
        found = [
            PendingJob(str(job["created_at"]), str(job["id"]), int(job["attempt"]))
            async for job in self._each(JobStatus.PENDING)
        ]
        return sorted(found)

    async def holdings(self) -> dict[str, str]:
        """Which agent (by id) holds which job, for the agents that hold one."""
        return {
            str(job["agent_id"]): str(job["id"])
            async for job in self._each(JobStatus.RUNNING)
            if job["agent_id"]
        }

    async def cancelled(self, job_ids: Collection[str]) -> set[str]:
        """Which of ``job_ids`` were cancelled (or are gone): their agents have nothing to do."""
        found = set()
        for job_id in job_ids:
            try:
                job = await self._jobs.get(parse_job_id(job_id))
            except JobNotFoundError:
                found.add(job_id)
                continue
            if job["status"] == JobStatus.CANCELLED:
                found.add(job_id)
        return found
