"""A heartbeat with `wait` is held open and answered as soon as its job stops running.

These tests give the hold far longer (a minute) than they ever wait for the answer: an answer in
time can only come from the cancel (or requeue) waking the held heartbeat.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from raibid_api.storage.event_store import STATUS_CHANNEL
from tests.support.agent_protocol import Held, ProtocolApp, ProtocolFactory, assert_error
from tests.support.polling import eventually

LONG_LEASE = {"lease": "600s"}  # a hold may last half a lease: here the whole 60 s of `wait`
ANSWER_DEADLINE_S = 20.0  # far below the hold: an answer by then was woken, not timed out


def held_heartbeat(api: ProtocolApp, held: Held, wait: float = 60) -> asyncio.Task[httpx.Response]:
    """A heartbeat with ``wait``, sent in the background."""
    return asyncio.create_task(api.call(held.id, "heartbeat", held.token, {"wait": wait}))


async def until_held(api: ProtocolApp, held: Held, task: asyncio.Task[Any]) -> None:
    """Wait until the heartbeat is held: it follows status changes in the shared reader."""
    fanout = api.app.state.raibid.live_logs.fanout

    def is_held() -> bool:
        assert not task.done(), task.result().text
        return STATUS_CHANNEL in fanout.watched_jobs and fanout.subscriber_count() == 1

    await eventually(is_held, 5, "the heartbeat to be held")


async def test_a_cancel_wakes_the_held_heartbeat_which_answers_cancel(
    start_protocol: ProtocolFactory,
) -> None:
    async with start_protocol(**LONG_LEASE) as api:
        held = await api.trigger_and_claim()
        task = held_heartbeat(api, held)
        await until_held(api, held, task)
        assert not task.done()

        await api.cancel(held.id)
        answer = await asyncio.wait_for(task, ANSWER_DEADLINE_S)

        assert answer.status_code == 200, answer.text
        assert answer.json()["cancel"] is True


async def test_a_requeue_by_the_reaper_wakes_the_held_heartbeat_which_loses_its_lease(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    task = held_heartbeat(api, held, wait=15)
    await until_held(api, held, task)

    api.expire_lease()
    assert await api.reaper.reap_once() == 1
    answer = await asyncio.wait_for(task, ANSWER_DEADLINE_S)

    assert_error(answer, 401, "invalid_job_token")


async def test_the_held_heartbeat_extends_the_lease_at_once(
    start_protocol: ProtocolFactory,
) -> None:
    async with start_protocol(**LONG_LEASE) as api:
        held = await api.trigger_and_claim()
        before = await api.redis.hget(api.keys.job(held.id), "_lease_until")
        api.clock.advance(100)
        task = held_heartbeat(api, held)
        await until_held(api, held, task)

        during = await api.redis.hget(api.keys.job(held.id), "_lease_until")
        await api.cancel(held.id)
        await asyncio.wait_for(task, ANSWER_DEADLINE_S)

        assert int(during) == int(before) + 100_000


async def test_a_short_wait_ends_with_cancel_false_and_the_job_still_running(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()

    answer = await api.call(held.id, "heartbeat", held.token, {"wait": 0.2})

    assert answer.status_code == 200, answer.text
    assert answer.json()["cancel"] is False
    assert (await api.job(held.id))["status"] == "running"


async def test_a_held_heartbeat_of_a_job_cancelled_before_answers_at_once(
    start_protocol: ProtocolFactory,
) -> None:
    async with start_protocol(**LONG_LEASE) as api:
        held = await api.trigger_and_claim()
        await api.cancel(held.id)

        answer = await asyncio.wait_for(
            api.call(held.id, "heartbeat", held.token, {"wait": 60}), ANSWER_DEADLINE_S
        )

        assert answer.json()["cancel"] is True


async def test_a_wait_out_of_range_is_refused(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()

    for wait in (-1, 61, "soon"):
        response = await api.call(held.id, "heartbeat", held.token, {"wait": wait})
        assert_error(response, 422, "validation_error")


async def test_a_completion_by_its_agent_answers_the_held_heartbeat_that_the_job_is_over(
    start_protocol: ProtocolFactory,
) -> None:
    async with start_protocol(**LONG_LEASE) as api:
        held = await api.trigger_and_claim()
        task = held_heartbeat(api, held)
        await until_held(api, held, task)

        completed = await api.complete(held, "success")
        answer = await asyncio.wait_for(task, ANSWER_DEADLINE_S)

        assert completed.status_code == 200, completed.text
        assert answer.status_code == 200, answer.text
        assert answer.json()["cancel"] is True


async def test_a_draining_server_holds_no_heartbeat(start_protocol: ProtocolFactory) -> None:
    async with start_protocol(**LONG_LEASE) as api:
        held = await api.trigger_and_claim()
        api.app.state.raibid.agents.drain()

        answer = await asyncio.wait_for(
            api.call(held.id, "heartbeat", held.token, {"wait": 60}), ANSWER_DEADLINE_S
        )
        claim = await asyncio.wait_for(api.claim_response(wait=60), ANSWER_DEADLINE_S)

        assert answer.json()["cancel"] is False
        assert claim.status_code == 204
