"""The reaper: a lost agent's job goes back in the queue (or fails), an overlong job times out."""

from __future__ import annotations

import asyncio

from raibid_api.domain.jobs import Job
from raibid_api.storage.keys import GROUP
from tests.support.agent_protocol import (
    LEASE_SECONDS,
    Held,
    ProtocolApp,
    ProtocolFactory,
    assert_error,
)


async def test_reaper_leaves_a_job_whose_lease_still_runs(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    api.clock.advance(LEASE_SECONDS - 1)

    moved = await api.reaper.reap_once()

    assert moved == 0
    assert (await api.job(held.id))["status"] == "running"


async def test_lease_expiry_requeues_the_job_with_the_next_attempt_under_one_fresh_entry(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    [(old_entry, _)] = await api.redis.xrange(api.keys.queue)
    api.expire_lease()

    moved = await api.reaper.reap_once()

    assert moved == 1
    job = await api.job(held.id)
    assert (job["status"], job["attempt"], job["agent_id"], job["started_at"]) == (
        "pending", 2, None, None,
    )  # fmt: skip
    entries = await api.redis.xrange(api.keys.queue)
    assert len(entries) == 1
    assert entries[0][0] != old_entry
    assert entries[0][1]["job_id"] == held.id
    assert (await api.redis.xpending(api.keys.queue, GROUP))["pending"] == 0
    assert await api.statuses(held.id) == ["running", "pending"]


async def test_the_old_token_is_refused_after_a_requeue_and_the_new_claim_works(
    api: ProtocolApp,
) -> None:
    old = await api.trigger_and_claim("agent-1")
    await api.send_logs(old, ["attempt one"], offset=0)
    api.expire_lease()
    await api.reaper.reap_once()
    before = await api.snapshot(old.id)

    refused = [
        await api.call(old.id, "heartbeat", old.token),
        await api.call(old.id, "logs", old.token, {"offset": 1, "lines": ["late"]}),
        await api.complete(old, "success"),
    ]
    after_refusals = await api.snapshot(old.id)
    new = await api.claim("agent-2")
    late = await api.call(new.id, "heartbeat", old.token)

    for response in refused:
        assert_error(response, 401, "invalid_job_token")
    assert after_refusals == before
    assert (new.id, new.job["attempt"], new.job["agent_id"]) == (old.id, 2, "agent-2")
    assert new.token != old.token
    assert_error(late, 401, "invalid_job_token")
    assert (await api.heartbeat(new))["cancel"] is False
    # the new attempt's log starts at offset 0; the first attempt's lines stay in the stream
    assert await api.send_logs(new, ["attempt two"], offset=0) == 1
    assert (await api.complete(new, "success")).status_code == 200
    assert [line for _, line in await api.log_lines(old.id)] == ["attempt one", "attempt two"]
    assert await api.statuses(old.id) == ["running", "pending", "running", "success"]
    assert await api.queue_length() == 0


async def test_lease_expiry_after_the_last_attempt_fails_the_job_with_agent_lost(
    start_protocol: ProtocolFactory,
) -> None:
    async with start_protocol(max_attempts=2) as api:
        held = await api.trigger_and_claim()
        api.expire_lease()
        await api.reaper.reap_once()
        await api.claim()
        api.expire_lease()

        moved = await api.reaper.reap_once()

        assert moved == 1
        job = await api.job(held.id)
        assert (job["status"], job["reason"], job["attempt"]) == ("failed", "agent_lost", 2)
        assert job["finished_at"] is not None
        assert await api.statuses(held.id) == ["running", "pending", "running", "failed"]
        assert await api.queue_length() == 0
        assert (await api.claim_response()).status_code == 204


async def test_two_reapers_sweeping_at_once_requeue_a_lost_job_once(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    api.expire_lease()

    moved = await asyncio.gather(*(api.reaper.reap_once() for _ in range(4)))

    assert sum(moved) == 1
    job = await api.job(held.id)
    assert (job["status"], job["attempt"]) == ("pending", 2)
    assert await api.queue_length() == 1
    assert await api.statuses(held.id) == ["running", "pending"]


async def test_a_job_past_the_timeout_fails_with_reason_timeout_and_its_agent_is_told(
    start_protocol: ProtocolFactory,
) -> None:
    async with start_protocol(timeout="10s") as api:
        held = await api.trigger_and_claim()
        api.clock.advance(5)
        await api.heartbeat(held)
        api.clock.advance(6)

        moved = await api.reaper.reap_once()

        assert moved == 1
        job = await api.job(held.id)
        assert (job["status"], job["reason"], job["exit_code"]) == ("failed", "timeout", None)
        assert job["duration"] == 11.0
        assert await api.queue_length() == 0
        assert (await api.heartbeat(held))["cancel"] is True
        assert await api.send_logs(held, ["killed"], offset=0) == 1
        completed = await api.complete(held, "failed", exit_code=None, reason="cancelled")
        assert completed.status_code == 200, completed.text
        job = await api.job(held.id)
        assert (job["status"], job["reason"]) == ("failed", "timeout")
        assert await api.statuses(held.id) == ["running", "failed"]


async def test_a_job_within_the_timeout_keeps_running(start_protocol: ProtocolFactory) -> None:
    async with start_protocol(timeout="10s") as api:
        held = await api.trigger_and_claim()
        api.clock.advance(9)

        moved = await api.reaper.reap_once()

        assert moved == 0
        assert (await api.job(held.id))["status"] == "running"


async def test_a_stale_sweep_leaves_alone_a_job_requeued_and_claimed_again_meanwhile(
    api: ProtocolApp,
) -> None:
    first = await api.trigger_and_claim("agent-1")
    api.clock.advance(1)
    second = await api.trigger_and_claim("agent-2")
    api.expire_lease()
    reclaimed: list[Held] = []
    interleaved = asyncio.Event()

    async def other_replica_and_agent(job: Job) -> None:
        # Runs inside this replica's sweep, right after it requeued the first job and before it
        # looks at the second: another replica sweeps, and agents claim what it requeued.
        if job["id"] == first.id and not interleaved.is_set():
            interleaved.set()
            await api.reaper.reap_once()
            reclaimed.append(await api.claim("agent-3"))  # the first job, queued first
            reclaimed.append(await api.claim("agent-4"))

    api.app.state.raibid.jobs.add_listener(other_replica_and_agent)
    await api.reaper.reap_once()

    fresh = reclaimed[-1]
    assert (fresh.id, fresh.job["attempt"]) == (second.id, 2)
    job = await api.job(second.id)
    assert (job["status"], job["attempt"], job["agent_id"]) == ("running", 2, "agent-4")
    assert (await api.heartbeat(fresh))["cancel"] is False
