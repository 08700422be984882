"""Every attempt boundary is a line of the job's log, written with the status change it explains."""

from __future__ import annotations

import asyncio

from tests.support.agent_protocol import ProtocolApp, ProtocolFactory


async def test_a_claim_a_lost_agent_and_the_last_attempt_each_say_so_before_their_status(
    start_protocol: ProtocolFactory,
) -> None:
    async with start_protocol(max_attempts=2) as api:
        first = await api.trigger_and_claim("agent-1")
        await api.send_logs(first, ["building"], offset=0)
        api.expire_lease()
        await api.reaper.reap_once()
        await api.claim("agent-2")
        api.expire_lease()
        await api.reaper.reap_once()

        assert await api.entries(first.id) == [
            "stdout:[raibid] attempt 1 started on agent agent-1",
            "status:running",
            "stdout:building",
            "stderr:[raibid] attempt 2: the agent of attempt 1 (agent-1) was lost; "
            "the job is queued again",
            "status:pending",
            "stdout:[raibid] attempt 2 started on agent agent-2",
            "status:running",
            "stderr:[raibid] the agent of attempt 2 (agent-2) was lost; "
            "that was the last of 2 attempts, so the job failed",
            "status:failed",
        ]


async def test_a_timeout_says_why_the_job_failed(start_protocol: ProtocolFactory) -> None:
    async with start_protocol(timeout="10s") as api:
        held = await api.trigger_and_claim("agent-1")
        api.clock.advance(11)
        await api.reaper.reap_once()

        assert (await api.entries(held.id))[-2:] == [
            "stderr:[raibid] attempt 1 on agent agent-1 ran longer than the job timeout (10s); "
            "its job failed",
            "status:failed",
        ]


async def test_replicas_sweeping_at_once_write_one_line_for_the_one_requeue(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim("agent-1")
    api.expire_lease()

    await asyncio.gather(*(api.reaper.reap_once() for _ in range(4)))

    lost = [line for line in await api.entries(held.id) if "was lost" in line]
    assert len(lost) == 1


async def test_a_sweep_that_finds_the_lease_renewed_writes_nothing(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim("agent-1")
    api.expire_lease()
    await api.heartbeat(held)  # the agent came back before the sweep

    assert await api.reaper.reap_once() == 0
    assert not [line for line in await api.entries(held.id) if "was lost" in line]
