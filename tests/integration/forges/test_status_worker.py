"""The listener and the outbox worker against the Gitea double: order, outages, replicas."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest

from raibid_api.config import RedisSettings
from raibid_api.embedded import free_port
from raibid_api.forges.policy import ReportingPolicy
from raibid_api.forges.reporting import StatusListener, StatusReporting
from raibid_api.forges.routing import ForgeRouter
from raibid_api.forges.worker import StatusWorker, commit_status
from raibid_api.storage.connection import create_redis
from raibid_api.storage.keys import Keys
from raibid_api.storage.outbox import StatusOutbox
from tests.support.factories import ManualClock, make_job
from tests.support.forge_double import ForgeDouble
from tests.support.forges import (
    CONTEXT,
    FORGE_TOKEN,
    KNOWN_REPO,
    PUBLIC_URL,
    Replica,
    drain,
    linked,
)
from tests.support.logs import LogEvents

RUNNING: dict[str, Any] = {
    "status": "running",
    "agent_id": "agent-1",
    "started_at": "2026-01-01T00:00:00.000Z",
}
SUCCESS: dict[str, Any] = {"status": "success", "duration": 42.0}


async def test_each_status_change_reaches_the_forge_in_order(
    reporting: StatusReporting, gitea: ForgeDouble
) -> None:
    job = make_job()
    for change in ({}, RUNNING, RUNNING | SUCCESS):
        await reporting.listener(linked(job | change))
        await reporting.worker.run_once()
    assert [(s.state, s.description) for s in gitea.statuses] == [
        ("pending", "Queued"), ("pending", "Running on agent-1"), ("success", "Passed in 42s"),
    ]  # fmt: skip
    assert {(s.repo, s.sha, s.context, s.target_url) for s in gitea.statuses} == {
        (KNOWN_REPO, job["commit"], CONTEXT, f"{PUBLIC_URL}/ui/jobs/{job['id']}")
    }


async def test_listener_only_queues_and_the_worker_calls_the_forge(
    reporting: StatusReporting, outbox: StatusOutbox, gitea: ForgeDouble
) -> None:
    await reporting.listener(linked(make_job()))
    assert gitea.requests == []
    assert (await outbox.depth()).queued == 1
    assert await reporting.worker.run_once() == 1
    assert len(gitea.requests) == 1


async def test_only_the_newest_state_is_sent_when_several_wait(
    reporting: StatusReporting, outbox: StatusOutbox, gitea: ForgeDouble
) -> None:
    job = make_job()
    for change in ({}, RUNNING, RUNNING | SUCCESS):
        await reporting.listener(linked(job | change))
    await reporting.listener(linked(job | RUNNING))  # a late listener of an older change
    await drain(reporting.worker)
    assert [s.state for s in gitea.statuses] == ["success"]
    assert await outbox.depth() == type(await outbox.depth())(0, 0, 0)


async def test_forge_down_then_failing_then_back_gets_the_final_state_with_backoff(
    reporting: StatusReporting,
    outbox: StatusOutbox,
    gitea: ForgeDouble,
    clock: ManualClock,
    captured_logs: LogEvents,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    job = make_job()
    waits = []
    await gitea.go_down()
    await reporting.listener(linked(job))
    for step in range(4):
        await reporting.worker.run_once()
        [retry] = await outbox.delayed()
        waits.append(retry.not_before - clock.ms)
        clock.advance(waits[-1] / 1000 - 0.001)
        await reporting.worker.run_once()
        assert await outbox.delayed() == [retry], "retried before its time"
        clock.advance(0.001)
        if step == 1:
            await gitea.come_back()
            gitea.mode = "error"
    assert waits == [2_000, 4_000, 8_000, 16_000]
    assert len(gitea.requests) == 2  # the refused tries never reached it; then two 500s
    await reporting.listener(linked(job | RUNNING | SUCCESS))
    gitea.mode = "up"
    await drain(reporting.worker)
    assert [s.state for s in gitea.statuses] == ["success"]
    assert gitea.shown(KNOWN_REPO, job["commit"], CONTEXT) == "success"
    assert await outbox.depth() == type(await outbox.depth())(0, 0, 0)
    lines = [r.getMessage() for r in caplog.records] + [repr(e) for e in captured_logs]
    assert any("will be retried" in line for line in lines)
    assert not [line for line in lines if FORGE_TOKEN in line]


@pytest.mark.parametrize(("retry_after", "wait_ms"), [("30", 30_000), ("3600", 300_000)])
async def test_rate_limited_report_waits_as_asked_within_the_cap(
    reporting: StatusReporting,
    outbox: StatusOutbox,
    gitea: ForgeDouble,
    clock: ManualClock,
    retry_after: str,
    wait_ms: int,
) -> None:
    gitea.mode, gitea.retry_after = "rate_limited", retry_after
    await reporting.listener(linked(make_job()))
    await reporting.worker.run_once()
    [retry] = await outbox.delayed()
    assert retry.not_before - clock.ms == wait_ms


async def test_second_replica_waits_while_the_first_sends_a_report_of_the_same_job(
    replica: Replica,
    reporting: StatusReporting,
    outbox: StatusOutbox,
    router: ForgeRouter,
    gitea: ForgeDouble,
    clock: ManualClock,
) -> None:
    job = make_job()
    replica_b = StatusWorker(replica("replica-b"), router, clock, ReportingPolicy())
    await reporting.listener(linked(job))
    [pending] = await outbox.read_new(10)
    assert await outbox.begin_send(pending, clock.ms, 30_000) == "go"  # replica A is mid-send
    await reporting.listener(linked(job | RUNNING | SUCCESS))
    await replica_b.run_once()
    assert gitea.requests == []
    [deferred] = await outbox.delayed()
    assert (deferred.state, deferred.attempt, deferred.not_before) == (
        "success",
        1,
        clock.ms + 1000,
    )
    reporter = router.reporter("gitea")
    assert reporter is not None
    await reporter.report(commit_status(pending.report))  # replica A's send ends
    await outbox.settle(pending, "sent")
    clock.advance(1)
    await drain(replica_b)
    assert [s.state for s in gitea.statuses] == ["pending", "success"]


async def test_replicas_share_the_reports_and_each_is_posted_once(
    replica: Replica,
    reporting: StatusReporting,
    outbox: StatusOutbox,
    router: ForgeRouter,
    gitea: ForgeDouble,
    clock: ManualClock,
) -> None:
    policy = ReportingPolicy(batch=4)
    workers = [StatusWorker(replica(n), router, clock, policy) for n in ("a", "b")]
    jobs = [make_job() for _ in range(12)]
    for job in jobs:
        await reporting.listener(linked(job | RUNNING | SUCCESS))
    first = await asyncio.gather(*(worker.run_once() for worker in workers))
    await drain(*workers)
    assert first == [4, 4]
    posted = Counter(s.target_url for s in gitea.statuses)
    assert posted == Counter({f"{PUBLIC_URL}/ui/jobs/{job['id']}": 1 for job in jobs})


async def test_reports_of_a_replica_that_died_are_taken_over(
    replica: Replica,
    reporting: StatusReporting,
    outbox: StatusOutbox,
    router: ForgeRouter,
    gitea: ForgeDouble,
    clock: ManualClock,
) -> None:
    await reporting.listener(linked(make_job() | RUNNING | SUCCESS))
    assert len(await replica("died").read_new(10)) == 1
    assert await reporting.worker.run_once() == 0  # not idle long enough to be taken yet
    policy = ReportingPolicy(claim_idle_ms=0)
    rescuer = StatusWorker(replica("rescuer"), router, clock, policy)
    assert await rescuer.run_once() == 1
    assert [s.state for s in gitea.statuses] == ["success"]


async def test_manual_job_is_reported_when_cloned_from_a_configured_forge(
    reporting: StatusReporting, gitea: ForgeDouble
) -> None:
    ours = make_job(forge=None, event="manual", clone_url=f"{gitea.url}/acme/widgets.git")
    theirs = make_job(forge=None, event="manual", clone_url="https://elsewhere.example/a/b.git")
    for job in (ours, theirs):
        await reporting.listener(linked(job))
    await drain(reporting.worker)
    assert [s.target_url for s in gitea.statuses] == [f"{PUBLIC_URL}/ui/jobs/{ours['id']}"]


async def test_jobs_without_a_commit_or_a_configured_forge_are_not_reported(
    reporting: StatusReporting, outbox: StatusOutbox
) -> None:
    await reporting.listener(linked(make_job(commit=None)))
    await reporting.listener(linked(make_job(forge="github")))
    assert (await outbox.depth()).queued == 0


async def test_listener_never_raises_when_redis_is_unreachable(
    router: ForgeRouter, keys: Keys, clock: ManualClock, captured_logs: LogEvents
) -> None:
    settings = RedisSettings(connect_timeout="200ms", socket_timeout="200ms")
    dead = create_redis(f"redis://127.0.0.1:{free_port()}/0", settings)
    listener = StatusListener(
        StatusOutbox(dead, keys, consumer="x", record_ttl_s=60), router, clock, ReportingPolicy()
    )
    try:
        await listener(linked(make_job()))
    finally:
        await dead.aclose()
    assert [e["event"] for e in captured_logs] == ["status report not queued"]


async def test_jobs_through_an_outage_with_two_replicas_end_in_their_final_state_in_order(
    replica: Replica,
    reporting: StatusReporting,
    outbox: StatusOutbox,
    router: ForgeRouter,
    gitea: ForgeDouble,
    clock: ManualClock,
) -> None:
    workers = [StatusWorker(replica(n), router, clock, ReportingPolicy()) for n in ("a", "b")]
    jobs = [make_job(commit=f"{i:040x}") for i in range(8)]
    failed: dict[str, Any] = {"status": "failed", "exit_code": 1}
    finals = [SUCCESS if i % 2 else failed for i in range(8)]
    await gitea.go_down()
    for phase in range(3):
        for job, final in zip(jobs, finals, strict=True):
            await reporting.listener(linked(job | [{}, RUNNING, RUNNING | final][phase]))
        await asyncio.gather(*(worker.run_once() for worker in workers))
        clock.advance(2)
    await gitea.come_back()
    gitea.mode = "error"
    for _ in range(3):
        clock.advance(60)
        await drain(*workers)
    gitea.mode = "up"
    clock.advance(300)
    await drain(*workers)
    for job, final in zip(jobs, finals, strict=True):
        expected = "success" if final is SUCCESS else "failure"
        assert gitea.shown(KNOWN_REPO, job["commit"], CONTEXT) == expected
        posted = [s.description for s in gitea.statuses if s.sha == job["commit"]]
        phases = [0 if d == "Queued" else 1 if d.startswith("Running") else 2 for d in posted]
        assert phases == sorted(phases)
    assert await outbox.depth() == type(await outbox.depth())(0, 0, 0)
