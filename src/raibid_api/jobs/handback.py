"""A running attempt given up: its job goes back in the queue as the next attempt, or fails.

Shared by the reaper (the attempt's agent was lost: its lease ran out) and the agent protocol's
``release`` (the agent hands its job back as it shuts down). Either way the move is one guarded
compare-and-set on "running" (`RUNNING -> PENDING` or `RUNNING -> FAILED` in domain/states.py)
with a line in the job's log saying why, and the attempt counts towards ``jobs.max_attempts``.
"""

from __future__ import annotations

from raibid_api.domain.jobs import AttemptGuard, Clock, Job, JobId, JobStatus
from raibid_api.jobs.service import JobService
from raibid_api.storage.job_store import JobStore

_CLEARED = dict.fromkeys(
    (
        "agent_id",
        "started_at",
        "_started_ms",
        "_lease_until",
        "_token",
        "_log_count",
        "_first_log_ms",
        "_completed",
    )
)


async def requeue_attempt(
    jobs: JobService, store: JobStore, clock: Clock, job: Job, guard: AttemptGuard, *,
    why: str, max_attempts: int,
) -> Job:  # fmt: skip
    """Queue ``job`` (running) again as its next attempt, or fail it after its last attempt.

    ``why`` says what happened to the attempt, for the job's log ("the agent of attempt 1 (a)
    was lost"). Returns the job as the API shows it after the move.

    Raises:
        TransitionConflictError: the attempt ``guard`` names is over (requeued, completed or
            cancelled meanwhile).
        JobTokenError: the guard's token is not the job's current one.
    """
    job_id = JobId(str(job["id"]))
    attempt = int(job["attempt"])
    if attempt >= max_attempts:
        last = f"that was the last of {max_attempts} attempts, so the job failed"
        return await jobs.finish(
            job_id, JobStatus.FAILED, reason="agent_lost", expect=(JobStatus.RUNNING,),
            guard=guard, note=("stderr", f"[raibid] {why}; {last}"),
        )  # fmt: skip
    after = await store.transition(
        job, JobStatus.PENDING, clock.now_ms(), _CLEARED | {"attempt": attempt + 1},
        requeue=True, guard=guard,
        note=("stderr", f"[raibid] attempt {attempt + 1}: {why}; the job is queued again"),
    )  # fmt: skip
    return await jobs.announce(after)
