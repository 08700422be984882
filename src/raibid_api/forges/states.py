"""How a job's status becomes a commit status: the state, the short description, the rank (pure).

Every forge takes ``pending``, ``success``, ``failure`` and ``error``; nothing else is sent
(Gitea's ``warning`` and ``skipped`` exist only in some versions, and neither forge has
"cancelled"). ``failure`` means the build itself failed; ``error`` means the platform could not
give a verdict on the commit: the agent was lost, the job ran out of time, the repository could
not be cloned, or the job was cancelled.
"""

from __future__ import annotations

from typing import Literal

from raibid_api.domain.jobs import Job, JobStatus

CommitState = Literal["pending", "success", "failure", "error"]
DESCRIPTION_LIMIT = 140

INFRA_REASONS = frozenset({"agent_lost", "timeout", "clone_failed"})
"""Reasons of a failed job that say nothing about the commit: reported as ``error``."""

_REASON_TEXT = {
    "agent_lost": "the build agent was lost",
    "timeout": "the job ran out of time",
    "clone_failed": "the repository could not be cloned",
    "no_pipeline": "the repository has no pipeline file",
    "invalid_pipeline": "the pipeline file is invalid",
    "superseded": "superseded by a newer push",
    "cancelled": "cancelled by a user",
}
_PHASE = {JobStatus.PENDING: 0, JobStatus.RUNNING: 1}
_PHASES = 3


def commit_state(job: Job) -> CommitState:
    """The commit status state of ``job``'s current status."""
    status = JobStatus(job["status"])
    if status in (JobStatus.PENDING, JobStatus.RUNNING):
        return "pending"
    if status is JobStatus.SUCCESS:
        return "success"
    if status is JobStatus.FAILED and job.get("reason") not in INFRA_REASONS:
        return "failure"
    return "error"


def report_rank(job: Job) -> int:
    """Orders the statuses of one job: a later status always has a higher rank.

    A job goes pending -> running -> ended, and a requeue (its agent was lost) starts again at
    pending with the next attempt, so the rank is (attempt, phase) flattened.
    """
    status = JobStatus(job["status"])
    phase = _PHASE.get(status, _PHASES - 1)
    return int(job.get("attempt") or 1) * _PHASES + phase


def describe(job: Job) -> str:
    """A short human description of ``job``'s status, at most 140 characters."""
    status = JobStatus(job["status"])
    attempt = int(job.get("attempt") or 1)
    if status is JobStatus.PENDING:
        text = "Queued" if attempt == 1 else f"Queued again (attempt {attempt})"
    elif status is JobStatus.RUNNING:
        text = f"Running on {job['agent_id']}" if job.get("agent_id") else "Running"
    elif status is JobStatus.SUCCESS:
        text = "Passed" + _took(job)
    else:
        text = _ended_badly(job, status)
    return _short(text)


def _ended_badly(job: Job, status: JobStatus) -> str:
    reason = job.get("reason")
    why = _REASON_TEXT.get(str(reason), str(reason)) if reason else None
    if status is JobStatus.CANCELLED:
        return f"Cancelled: {why}" if why else "Cancelled"
    if reason in INFRA_REASONS:
        return f"Error: {why}" + _took(job)
    if job.get("exit_code") is not None:
        return f"Failed: exit code {job['exit_code']}" + _took(job)
    return (f"Failed: {why}" if why else "Failed") + _took(job)


def _took(job: Job) -> str:
    duration = job.get("duration")
    if duration is None:
        return ""
    seconds = round(float(duration))
    minutes, seconds = divmod(seconds, 60)
    return f" in {minutes}m {seconds}s" if minutes else f" in {seconds}s"


def _short(text: str) -> str:
    one_line = " ".join(text.split())
    if len(one_line) <= DESCRIPTION_LIMIT:
        return one_line
    return one_line[: DESCRIPTION_LIMIT - 1] + "…"
