"""The job state machine: the single source of truth for which transitions exist (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from raibid_api.domain.jobs import JobStatus

TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    # back to pending: the lease ran out and attempts are left (the reaper requeues it)
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PENDING}
    ),
    JobStatus.SUCCESS: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_leave(current: JobStatus, target: JobStatus) -> bool:
    """Whether the state machine has an edge from ``current`` to ``target``."""
    return target in TRANSITIONS[current]


def check_transition(current: JobStatus, target: JobStatus) -> None:
    """Raise `ValueError` for an edge the state machine does not have (a programming error)."""
    if not can_leave(current, target):
        raise ValueError(f"no transition from {current} to {target}")
