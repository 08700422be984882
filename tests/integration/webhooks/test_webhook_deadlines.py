"""The intake's deadlines are settings: ``webhooks.store_deadline`` and ``rate_limit_deadline``.

Each test stalls its own redis-server with ``CLIENT PAUSE`` (every client's commands wait, as
behind a Redis that is busy or far away) and sends the same delivery under two settings: one
deadline shorter than the stall, one longer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from raibid_api.embedded import EmbeddedRedis
from tests.support.aliases import SettingsFactory
from tests.support.logs import LogEvents
from tests.support.polling import eventually
from tests.support.webhook_app import jobs_by_delivery, serving, spooled
from tests.support.webhook_deliveries import deliver, push_body, sha
from tests.support.webhook_samples import fixture_delivery

STALL_MS = 1500


async def stall(server: EmbeddedRedis) -> None:
    """Hold every command of every client of ``server`` for `STALL_MS`."""
    client = Redis.from_url(server.url)
    try:
        await client.client_pause(STALL_MS, all=True)
    finally:
        await client.aclose()


async def test_a_store_deadline_shorter_than_a_stall_spools_the_delivery(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory, spool_dir: Path, prefix: str
) -> None:
    settings = settings_for(redis_url=own_redis.url, store_deadline="50ms")
    async with serving(settings) as client:
        await stall(own_redis)
        answer = await deliver(client, push_body(sha(1)), delivery_id="d-1")
        on_disk = spooled(spool_dir)
        await eventually(lambda: asyncio.to_thread(lambda: not spooled(spool_dir)), 15, "replay")

    assert answer.status_code == 202
    assert answer.json() == {"spooled": True, "delivery_id": "d-1"}
    assert len(on_disk) == 1
    # the write that missed the deadline and the replay of the spooled delivery: one job
    jobs = await jobs_by_delivery(own_redis.url, prefix)
    assert list(jobs) == ["d-1"]
    assert len(jobs["d-1"]) == 1


async def test_a_store_deadline_longer_than_a_stall_stores_the_delivery(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory, spool_dir: Path, prefix: str
) -> None:
    settings = settings_for(redis_url=own_redis.url, store_deadline="4.5s")
    async with serving(settings) as client:
        await stall(own_redis)
        answer = await deliver(client, push_body(sha(1)), delivery_id="d-1")

    assert answer.status_code == 202
    assert list(answer.json()) == ["job_id", "status_url"]
    assert spooled(spool_dir) == []
    assert (await jobs_by_delivery(own_redis.url, prefix))["d-1"] == [answer.json()["job_id"]]


async def test_a_rate_limit_deadline_shorter_than_a_stall_lets_the_delivery_in(
    own_redis: EmbeddedRedis,
    settings_for: SettingsFactory,
    captured_logs: LogEvents,
) -> None:
    headers, ping = fixture_delivery("github", "github/ping-1.json")
    settings = settings_for(
        redis_url=own_redis.url, rate_limit_per_minute=1, rate_limit_deadline="50ms"
    )
    async with serving(settings) as client:
        first = await client.post("/webhook/github", content=ping, headers=headers)
        await stall(own_redis)
        second = await client.post("/webhook/github", content=ping, headers=headers)

    assert first.status_code == second.status_code == 200
    assert second.json()["ignored"] == "ping"
    assert "webhook rate limit not checked" in [event["event"] for event in captured_logs]


async def test_a_rate_limit_deadline_longer_than_a_stall_enforces_the_limit(
    own_redis: EmbeddedRedis,
    settings_for: SettingsFactory,
    captured_logs: LogEvents,
) -> None:
    headers, ping = fixture_delivery("github", "github/ping-1.json")
    settings = settings_for(
        redis_url=own_redis.url, rate_limit_per_minute=1, rate_limit_deadline="4.5s"
    )
    async with serving(settings) as client:
        first = await client.post("/webhook/github", content=ping, headers=headers)
        await stall(own_redis)
        second = await client.post("/webhook/github", content=ping, headers=headers)

    assert first.status_code == 200
    assert second.status_code == 429
    assert "webhook rate limit not checked" not in [event["event"] for event in captured_logs]
