"""The job metrics, counted from the status changes every job announces (a `JobListener`)."""

from __future__ import annotations

from raibid_api.domain.jobs import Job, JobStatus, parse_time_ms
from raibid_api.observability import metrics


async def count_job(job: Job) -> None:
    """Count a job's status change: created, claimed (its queue wait), or ended (its duration).

    A job queued again by the reaper (attempt 2 and on) is counted by the reaper, not as new.
    """
    status = job["status"]
    if status == JobStatus.PENDING:
        if (job.get("attempt") or 1) <= 1:
            metrics.job_created(job.get("event"))
    elif status == JobStatus.RUNNING:
        if job.get("started_at") and job.get("created_at"):
            wait_ms = parse_time_ms(job["started_at"]) - parse_time_ms(job["created_at"])
            metrics.job_claimed(wait_ms / 1000)
    else:
        duration = job.get("duration")
        metrics.job_finished(str(status), job.get("reason"), float(duration) if duration else None)
