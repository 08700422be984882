"""The sweep: an ended job's final state reaches the forge even when its reports failed for good."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from raibid_api.domain.jobs import Job, JobId, JobStatus, format_time, parse_time_ms
from raibid_api.forges.policy import ReportingPolicy
from raibid_api.forges.reporting import StatusReporting
from raibid_api.forges.routing import ForgeRouter
from raibid_api.forges.sweep import StatusSweep
from raibid_api.jobs.service import JobService
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.outbox import StatusOutbox, StatusReport
from tests.support.aliases import RawRedis
from tests.support.factories import ManualClock, make_job
from tests.support.forge_double import ForgeDouble
from tests.support.forges import CONTEXT, KNOWN_REPO, Replica, drain

LOOK_AGAIN_S = ReportingPolicy().gave_up_look_again_ms / 1000


@dataclass
class CountingLookup:
    """The job service, counting the jobs the sweep reads."""

    jobs: JobService
    looked_up: list[str] = field(default_factory=list)

    async def get(self, job_id: JobId) -> Job:
        self.looked_up.append(job_id)
        return await self.jobs.get(job_id)


async def ended(
    jobs: JobService, store: JobStore, status: JobStatus = JobStatus.SUCCESS,
    reason: str | None = None, **fields: Any,
) -> Job:  # fmt: skip
    """A job that ran (started as a claim starts it, unseen by listeners) and ended."""
    job = (await jobs.create(make_job(**fields))).job
    started = parse_time_ms(job["created_at"])
    await store.transition(job, JobStatus.RUNNING, started, {"started_at": format_time(started)})
    return await jobs.finish(JobId(job["id"]), status, reason=reason)


async def test_final_state_refused_for_good_is_reported_once_the_forge_takes_it(
    reporting: StatusReporting,
    jobs: JobService,
    store: JobStore,
    outbox: StatusOutbox,
    gitea: ForgeDouble,
    clock: ManualClock,
    redis: RawRedis,
) -> None:
    jobs.add_listener(reporting.listener)
    # the forge does not know the repository yet
    job = await ended(jobs, store, repo="acme/gadgets")
    await drain(reporting.worker)
    assert [r.path.split("/")[5] for r in gitea.requests] == ["gadgets"]
    assert (await outbox.depth()).unreported == 1
    gitea.repos.add("acme/gadgets")
    clock.advance(LOOK_AGAIN_S - 1)
    assert await reporting.sweep.run_once() == 0
    clock.advance(1)
    assert await reporting.sweep.run_once() == 1
    await drain(reporting.worker)
    assert gitea.shown("acme/gadgets", job["commit"], CONTEXT) == "success"
    assert (await outbox.depth()).unreported == 0


async def test_final_state_whose_retries_ran_out_is_reported_when_the_forge_returns(
    outbox: StatusOutbox,
    router: ForgeRouter,
    jobs: JobService,
    store: JobStore,
    gitea: ForgeDouble,
    clock: ManualClock,
) -> None:
    reporting = StatusReporting(outbox, router, jobs, clock, ReportingPolicy(max_attempts=3))
    jobs.add_listener(reporting.listener)
    await gitea.go_down()
    job = await ended(jobs, store, JobStatus.FAILED, reason="agent_lost")
    for wait_s in (0, 2, 4):
        clock.advance(wait_s)
        await reporting.worker.run_once()
    depth = await outbox.depth()
    assert (depth.queued, depth.delayed, depth.unreported) == (0, 0, 1)
    await gitea.come_back()
    clock.advance(LOOK_AGAIN_S)
    assert await reporting.sweep.run_once() == 1
    await drain(reporting.worker)
    assert gitea.shown(KNOWN_REPO, job["commit"], CONTEXT) == "error"


async def test_ended_job_whose_final_state_was_never_queued_is_found_and_reported(
    reporting: StatusReporting, jobs: JobService, store: JobStore, gitea: ForgeDouble
) -> None:
    # no listener: as if the replica died right after the transition
    job = await ended(jobs, store)
    assert await reporting.sweep.run_once() == 1
    assert await reporting.sweep.run_once() == 0
    await drain(reporting.worker)
    assert [s.state for s in gitea.statuses] == ["success"]
    assert gitea.shown(KNOWN_REPO, job["commit"], CONTEXT) == "success"


async def test_ended_job_created_before_the_window_is_left_alone(
    reporting: StatusReporting, jobs: JobService, store: JobStore, clock: ManualClock
) -> None:
    await ended(jobs, store)
    clock.advance(ReportingPolicy().reconcile_window_ms / 1000 + 1)
    assert await reporting.sweep.run_once() == 0


async def test_two_sweeps_at_once_queue_a_final_state_once(
    replica: Replica,
    outbox: StatusOutbox,
    router: ForgeRouter,
    jobs: JobService,
    store: JobStore,
    clock: ManualClock,
    redis: RawRedis,
) -> None:
    await ended(jobs, store)
    sweeps = [StatusSweep(replica(n), router, jobs, clock, ReportingPolicy())
              for n in ("a", "b")]  # fmt: skip
    assert sum(await asyncio.gather(*(s.run_once() for s in sweeps))) == 1
    assert (await outbox.depth()).queued == 1


async def test_ended_job_of_an_unconfigured_forge_is_read_once_and_never_queued(
    outbox: StatusOutbox, router: ForgeRouter, jobs: JobService, store: JobStore, clock: ManualClock
) -> None:
    lookup = CountingLookup(jobs)
    sweep = StatusSweep(outbox, router, lookup, clock, ReportingPolicy())
    job = await ended(jobs, store, forge="github")
    assert await sweep.run_once() == 0
    assert await sweep.run_once() == 0
    assert lookup.looked_up == [job["id"]]
    assert (await outbox.depth()).queued == 0


async def test_unreported_job_that_expired_is_forgotten(
    reporting: StatusReporting, outbox: StatusOutbox, clock: ManualClock
) -> None:
    gone = StatusReport("0e2cf1e2-8d7f-4c55-9a49-4a4d4b0c2f11", "gitea", KNOWN_REPO, "c" * 40,
                        "success", "Passed", "", CONTEXT, 5, True)  # fmt: skip
    await outbox.enqueue(gone, look_again_ms=clock.ms)
    assert await reporting.sweep.run_once() == 0
    assert (await outbox.depth()).unreported == 0


async def test_cancelled_job_is_reported_as_error(
    reporting: StatusReporting, jobs: JobService, gitea: ForgeDouble
) -> None:
    jobs.add_listener(reporting.listener)
    job = (await jobs.create(make_job())).job
    await jobs.cancel(JobId(job["id"]))
    await drain(reporting.worker)
    [shown] = gitea.statuses
    assert (shown.state, shown.description) == ("error", "Cancelled: cancelled by a user")
