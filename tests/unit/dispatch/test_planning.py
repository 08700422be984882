"""Which agent Jobs to create and which to delete, decided from the queue and the cluster (pure)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from raibid_api.dispatch.creator import idle_agents, plan_creations
from raibid_api.dispatch.manifests import agent_job_name
from raibid_api.dispatch.observed import AgentJob, Phase
from raibid_api.dispatch.sources import PendingJob
from raibid_api.dispatch.watcher import (
    DeletionRules,
    failure_reason,
    plan_deletions,
    pods_by_job,
)

NOW = 1_790_000_000_000
RULES = DeletionRules(ttl_ms=3_600_000, retry_delay_ms=30_000, ttl_grace_ms=60_000)


def pending(n: int, attempt: int = 1) -> PendingJob:
    job_id = str(uuid.uuid5(uuid.NAMESPACE_OID, str(n)))  # distinct short ids, stable per n
    return PendingJob(f"2026-03-01T12:00:{n:02d}.000Z", job_id, attempt)


def agent(job: PendingJob, phase: Phase = Phase.ACTIVE, finished_ms: int | None = None) -> AgentJob:
    name = agent_job_name(job.job_id, job.attempt)
    return AgentJob(name, f"uid-{name}", job.job_id, job.attempt, phase, finished_ms)


def names(jobs: list[PendingJob]) -> list[str]:
    return [agent_job_name(job.job_id, job.attempt) for job in jobs]


def test_every_pending_job_without_an_agent_job_gets_one_oldest_first() -> None:
    queue = [pending(2), pending(0), pending(1)]
    assert plan_creations(queue, [], {}) == [pending(0), pending(1), pending(2)]


def test_an_idle_agent_job_covers_one_pending_job() -> None:
    queue = [pending(0), pending(1)]
    assert plan_creations(queue, [agent(pending(0))], {}) == [pending(1)]
    assert plan_creations(queue, [agent(pending(0)), agent(pending(1))], {}) == []


def test_an_agent_job_whose_agent_holds_a_job_covers_none() -> None:
    busy = agent(pending(9))
    assert plan_creations([pending(0)], [busy], {busy.name: pending(9).job_id}) == [pending(0)]
    assert idle_agents([busy], {busy.name: pending(9).job_id}) == 0


def test_idle_agent_named_after_another_job_still_covers_a_pending_one() -> None:
    # agents claim whatever the queue hands them: names do not bind a Job to its job
    assert plan_creations([pending(0)], [agent(pending(5))], {}) == []


def test_finished_agent_jobs_cover_nothing_but_keep_their_names_taken() -> None:
    done = agent(pending(0), Phase.SUCCEEDED, NOW)
    assert plan_creations([pending(0), pending(1)], [done], {}) == [pending(1)]


def test_a_new_attempt_gets_a_new_agent_job() -> None:
    old = agent(pending(0, attempt=1), Phase.FAILED, NOW)
    assert plan_creations([pending(0, attempt=2)], [old], {}) == [pending(0, attempt=2)]


def test_creations_per_pass_are_capped() -> None:
    queue = [pending(n) for n in range(10)]
    assert plan_creations(queue, [], {}, limit=3) == queue[:3]


@given(
    queue=st.lists(st.integers(0, 40), unique=True, max_size=20),
    up=st.lists(st.integers(0, 40), unique=True, max_size=20),
)
def test_plan_covers_every_pending_job_it_can_without_creating_beyond_demand(
    queue: list[int], up: list[int]
) -> None:
    waiting = [pending(n) for n in queue]
    existing = [agent(pending(n)) for n in up]
    planned = plan_creations(waiting, existing, {}, limit=1000)
    created = [agent(job) for job in planned]
    assert len(set(names(planned)) | {a.name for a in existing}) == len(planned) + len(existing)
    idle_after = idle_agents(existing + created, {})
    free_names = set(names(waiting)) - {a.name for a in existing}
    assert idle_after >= len(waiting) or not (free_names - set(names(planned)))
    assert idle_after <= max(len(waiting), len(existing))


def test_succeeded_agent_job_of_a_still_pending_job_is_deleted_at_once() -> None:
    done = agent(pending(0), Phase.SUCCEEDED, NOW)
    deletions = plan_deletions([done], [pending(0)], NOW, RULES)
    assert [(d.name, d.why) for d in deletions] == [(done.name, "its job still waits for an agent")]


def test_failed_agent_job_of_a_pending_job_is_deleted_only_after_the_retry_delay() -> None:
    failed = agent(pending(0), Phase.FAILED, NOW)
    assert plan_deletions([failed], [pending(0)], NOW + 29_999, RULES) == []
    assert [d.name for d in plan_deletions([failed], [pending(0)], NOW + 30_000, RULES)] == [
        failed.name
    ]


def test_finished_agent_job_of_a_job_that_moved_on_stays_until_its_ttl() -> None:
    done = agent(pending(0), Phase.SUCCEEDED, NOW)
    assert plan_deletions([done], [pending(0, attempt=2)], NOW + 3_659_999, RULES) == []
    deletions = plan_deletions([done], [], NOW + 3_660_000, RULES)
    assert [(d.name, d.why) for d in deletions] == [(done.name, "past ttlSecondsAfterFinished")]


def test_active_and_deleting_agent_jobs_are_never_deleted() -> None:
    jobs = [agent(pending(0)), agent(pending(1), Phase.DELETING)]
    assert plan_deletions(jobs, [pending(0), pending(1)], NOW + 10**9, RULES) == []


def test_failure_reason_joins_the_job_condition_and_the_pod_reasons() -> None:
    failed = AgentJob("j", "u", None, None, Phase.FAILED, NOW, "BackoffLimitExceeded: limit")
    pod = {
        "metadata": {"labels": {"batch.kubernetes.io/job-name": "j"}},
        "status": {"reason": "Evicted", "message": "low on memory"},
    }
    assert failure_reason(failed, [pod]) == "BackoffLimitExceeded: limit; Evicted: low on memory"
    assert pods_by_job([pod, {"metadata": {}}]) == {"j": [pod]}
    assert failure_reason(AgentJob("j", "u", None, None, Phase.FAILED), []) == "no reason reported"


def test_running_agent_job_of_a_cancelled_job_is_deleted_and_others_are_not() -> None:
    running, other = agent(pending(0)), agent(pending(1))
    done = agent(pending(2), Phase.SUCCEEDED, NOW)
    cancelled = {str(running.job_id), str(done.job_id)}
    deletions = plan_deletions([running, other, done], [], NOW, RULES, cancelled)
    assert [(d.name, d.why) for d in deletions] == [(running.name, "its job was cancelled")]
