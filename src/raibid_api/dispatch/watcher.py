"""Following agent Jobs: why they failed, which pods cannot start, which Jobs to delete.

A failed agent Job is logged once per replica with the reason Kubernetes gives (the Job's
condition and its pod's: image pull, eviction, OOM kill, exit code), and whether its agent held a
job when it died (the lease expiry then requeues that job) or never claimed one. Live pods that
cannot start (image pull errors, a missing Secret, no node fits) are logged once per reason.

Two kinds of finished Jobs are deleted: a Job whose CI job still waits at the same attempt (its
agent took another job, or failed before claiming), so a new Job of that name can be created,
after `RETRY_DELAY_MS` when it failed; and any Job past ``ttlSecondsAfterFinished`` plus
`TTL_GRACE_MS`, which a cluster with the TTL controller has deleted already. A running Job is
deleted when its CI job was cancelled: its pod (and its Secret) go with it, in the background.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import structlog

from raibid_api.dispatch.cluster import ClusterApi
from raibid_api.dispatch.observed import (
    AgentJob,
    Phase,
    pod_failure,
    pod_job_name,
    pod_start_problem,
    pod_uid,
)
from raibid_api.dispatch.sources import PendingJob

_log = structlog.get_logger("raibid_api.dispatch")
RETRY_DELAY_MS = 30_000  # a failing image or Secret is retried at most this often per job
TTL_GRACE_MS = 60_000
# The kubelet alternates these while it retries a pull: one problem, reported once.
_SAME_PROBLEM = {"ErrImagePull": "image-pull", "ImagePullBackOff": "image-pull"}


@dataclass(frozen=True)
class Deletion:
    """A finished agent Job to delete, and why."""

    name: str
    why: str


@dataclass(frozen=True)
class DeletionRules:
    """When finished agent Jobs are deleted."""

    ttl_ms: int
    retry_delay_ms: int = RETRY_DELAY_MS
    ttl_grace_ms: int = TTL_GRACE_MS


def _deletion(
    job: AgentJob, waiting: Set[tuple[str, int]], now_ms: int, rules: DeletionRules
) -> Deletion | None:
    if not job.is_finished or job.finished_ms is None:
        return None
    age = now_ms - job.finished_ms
    if age >= rules.ttl_ms + rules.ttl_grace_ms:
        return Deletion(job.name, "past ttlSecondsAfterFinished")
    if (job.job_id, job.attempt) not in waiting:
        return None
    if job.phase is Phase.SUCCEEDED or age >= rules.retry_delay_ms:
        return Deletion(job.name, "its job still waits for an agent")
    return None


def plan_deletions(
    agent_jobs: Sequence[AgentJob],
    pending: Sequence[PendingJob],
    now_ms: int,
    rules: DeletionRules,
    cancelled: Set[str] = frozenset(),
) -> list[Deletion]:
    """The agent Jobs to delete now: finished ones, and running ones of ``cancelled`` jobs."""
    waiting = {(p.job_id, p.attempt) for p in pending}
    found = [
        Deletion(job.name, "its job was cancelled")
        if job.phase is Phase.ACTIVE and job.job_id in cancelled
        else _deletion(job, waiting, now_ms, rules)
        for job in agent_jobs
    ]
    return [deletion for deletion in found if deletion is not None]


def running_job_ids(agent_jobs: Sequence[AgentJob]) -> set[str]:
    """The CI jobs the running agent Jobs are for."""
    return {job.job_id for job in agent_jobs if job.phase is Phase.ACTIVE and job.job_id}


def pods_by_job(pods: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Agent pods grouped by the name of the Job that owns them."""
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for pod in pods:
        name = pod_job_name(pod)
        if name:
            grouped[name].append(pod)
    return dict(grouped)


def failure_reason(job: AgentJob, pods: Sequence[Mapping[str, Any]]) -> str:
    """Why an agent Job failed, in the words of its condition and of its pods."""
    reasons = [job.reason] if job.reason else []
    reasons.extend(reason for reason in map(pod_failure, pods) if reason)
    return "; ".join(reasons) or "no reason reported"


class AgentJobWatcher:
    """Reports agent Job failures and stuck pods once, and deletes finished Jobs."""

    def __init__(self, api: ClusterApi, rules: DeletionRules) -> None:
        self._api = api
        self._rules = rules
        self._reported: set[str] = set()

    def needs_pods(self, agent_jobs: Sequence[AgentJob]) -> bool:
        """Whether `report` would look at pods: a Job runs, or failed and is not reported yet."""
        return any(
            job.phase is Phase.ACTIVE
            or (job.phase is Phase.FAILED and job.uid not in self._reported)
            for job in agent_jobs
        )

    def report(
        self,
        agent_jobs: Sequence[AgentJob],
        pods: Sequence[Mapping[str, Any]],
        holdings: Mapping[str, str],
    ) -> None:
        """Log each failure and each pod that cannot start, once."""
        grouped = pods_by_job(pods)
        for job in agent_jobs:
            if job.phase is Phase.FAILED:
                self._report_failure(job, grouped.get(job.name, []), holdings)
            elif job.phase is Phase.ACTIVE:
                self._report_stuck(job, grouped.get(job.name, []))
        # forget what the cluster no longer has: keys start with a Job's or a pod's uid
        live = {job.uid for job in agent_jobs} | {pod_uid(pod) for pod in pods}
        self._reported = {key for key in self._reported if key.split("/", 1)[0] in live}

    def _report_failure(
        self, job: AgentJob, pods: Sequence[Mapping[str, Any]], holdings: Mapping[str, str]
    ) -> None:
        if job.uid in self._reported:
            return
        self._reported.add(job.uid)
        reason = failure_reason(job, pods)
        held = holdings.get(job.name)
        if held:
            _log.warning("agent Job failed while its agent held a job; its lease will run out",
                         agent_job=job.name, held_job_id=held, reason=reason)  # fmt: skip
        else:
            _log.warning("agent Job failed before its agent claimed a job", agent_job=job.name,
                         job_id=job.job_id, attempt=job.attempt, reason=reason)  # fmt: skip

    def _report_stuck(self, job: AgentJob, pods: Sequence[Mapping[str, Any]]) -> None:
        for pod in pods:
            problem = pod_start_problem(pod)
            if problem is None:
                continue
            reason = problem.split(":", 1)[0]
            key = f"{pod_uid(pod)}/{_SAME_PROBLEM.get(reason, reason)}"
            if key not in self._reported:
                self._reported.add(key)
                _log.warning("agent pod cannot start", agent_job=job.name, job_id=job.job_id,
                             attempt=job.attempt, reason=problem)  # fmt: skip

    async def clean_up(
        self, agent_jobs: Sequence[AgentJob], pending: Sequence[PendingJob], now_ms: int,
        cancelled: Set[str] = frozenset(),
    ) -> list[str]:  # fmt: skip
        """Delete the agent Jobs `plan_deletions` names; return their names.

        Raises:
            ServiceUnavailableError: the Kubernetes API refused or did not answer.
        """
        deleted = []
        for deletion in plan_deletions(agent_jobs, pending, now_ms, self._rules, cancelled):
            await self._api.delete_job(deletion.name)
            deleted.append(deletion.name)
            _log.info("agent Job deleted", agent_job=deletion.name, why=deletion.why)
        return deleted
