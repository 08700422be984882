"""`release`: an agent shutting down hands its running job back; it is queued again at once."""

from __future__ import annotations

from raibid_api.storage.keys import GROUP
from tests.support.agent_protocol import ProtocolApp, ProtocolFactory, assert_error

HANDED_BACK = (
    "stderr:[raibid] attempt 2: the agent of attempt 1 (agent-1) handed the job back as it shut "
    "down; the job is queued again"
)


async def test_release_queues_the_next_attempt_at_once_with_a_line_saying_why(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim("agent-1")
    [(old_entry, _)] = await api.redis.xrange(api.keys.queue)

    response = await api.call(held.id, "release", held.token)

    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["status"], job["attempt"], job["agent_id"], job["started_at"]) == (
        "pending", 2, None, None,
    )  # fmt: skip
    assert await api.job(held.id) == job
    # no lease had to run out: the reaper has nothing to do
    assert await api.reaper.reap_once() == 0
    [(entry, fields)] = await api.redis.xrange(api.keys.queue)
    assert (entry != old_entry, fields["job_id"]) == (True, held.id)
    assert (await api.redis.xpending(api.keys.queue, GROUP))["pending"] == 0
    assert (await api.entries(held.id))[-2:] == [HANDED_BACK, "status:pending"]
    again = await api.claim("agent-2")
    assert (again.id, again.job["attempt"]) == (held.id, 2)


async def test_the_released_token_stops_working_and_a_repeat_is_refused(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    assert (await api.call(held.id, "release", held.token)).status_code == 200
    before = await api.snapshot(held.id)

    refused = [
        await api.call(held.id, "release", held.token),
        await api.call(held.id, "heartbeat", held.token),
        await api.complete(held, "success"),
    ]

    for response in refused:
        assert_error(response, 401, "invalid_job_token")
    assert await api.snapshot(held.id) == before


async def test_release_needs_the_job_token(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    before = await api.snapshot(held.id)

    assert_error(await api.call(held.id, "release", None), 401, "invalid_job_token")
    assert_error(await api.call(held.id, "release", "not-the-token"), 401, "invalid_job_token")
    assert await api.snapshot(held.id) == before


async def test_release_after_the_last_attempt_fails_the_job_with_agent_lost(
    start_protocol: ProtocolFactory,
) -> None:
    async with start_protocol(max_attempts=1) as api:
        held = await api.trigger_and_claim("agent-1")

        response = await api.call(held.id, "release", held.token)

        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["reason"]) == ("failed", "agent_lost")
        assert (await api.entries(held.id))[-2] == (
            "stderr:[raibid] the agent of attempt 1 (agent-1) handed the job back as it shut "
            "down; that was the last of 1 attempts, so the job failed"
        )
        assert await api.queue_length() == 0


async def test_release_of_a_job_cancelled_meanwhile_leaves_it_cancelled(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    await api.cancel(held.id)

    response = await api.call(held.id, "release", held.token)

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["attempt"]) == ("cancelled", 1)
    assert await api.queue_length() == 0


async def test_release_after_complete_is_a_conflict(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    assert (await api.complete(held, "success")).status_code == 200

    assert_error(await api.call(held.id, "release", held.token), 409, "already_completed")
    assert (await api.job(held.id))["status"] == "success"
