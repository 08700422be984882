"""Never lose an acknowledged push: with Redis gone, deliveries are spooled to disk, then replayed.

Each test runs its own redis-server (with an append-only file, as production does), stops it in
the middle, and starts it again on the same port and data.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from raibid_api.embedded import EmbeddedRedis
from tests.support.aliases import SettingsFactory
from tests.support.api import READ, assert_error
from tests.support.polling import eventually
from tests.support.webhook_app import jobs_by_delivery, serving, spooled
from tests.support.webhook_deliveries import deliver, push_body, sha


async def restart(server: EmbeddedRedis) -> None:
    """Start ``server`` again on its port (kept from its first start), with its data."""
    port = server.port
    await asyncio.to_thread(server.start)
    assert server.port == port


async def test_deliveries_while_redis_is_down_are_spooled_and_replayed_exactly_once(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory, spool_dir: Path, prefix: str
) -> None:
    settings = settings_for(redis_url=own_redis.url)
    async with serving(settings) as client:
        before = await deliver(client, push_body(sha(1), branch="main"), delivery_id="d-1")
        await asyncio.to_thread(own_redis.stop)

        during = [
            await deliver(client, push_body(sha(2), branch="main"), delivery_id="d-2"),
            await deliver(client, push_body(sha(3), branch="main"), delivery_id="d-3"),
            # the forge's retry of d-2 while Redis is still away
            await deliver(client, push_body(sha(2), branch="main"), delivery_id="d-2"),
            # a redelivery of a job stored before Redis went away
            await deliver(client, push_body(sha(1), branch="main"), delivery_id="d-1"),
        ]
        on_disk = spooled(spool_dir)
        await restart(own_redis)
        await eventually(lambda: asyncio.to_thread(lambda: not spooled(spool_dir)), 15, "replay")
        entries = (await client.get("/webhook/deliveries", headers=READ)).json()["deliveries"]

    assert before.status_code == 202
    assert [a.status_code for a in during] == [202] * 4
    assert [a.json() for a in during] == [
        {"spooled": True, "delivery_id": d} for d in ("d-2", "d-3", "d-2", "d-1")
    ]
    assert len(on_disk) == 4
    jobs = await jobs_by_delivery(own_redis.url, prefix)
    assert sorted(jobs) == ["d-1", "d-2", "d-3"]
    assert all(len(ids) == 1 for ids in jobs.values())
    assert jobs["d-1"] == [before.json()["job_id"]]
    replays = [(e["delivery_id"], e["decision"]) for e in entries if e["spooled"]]
    assert replays == [("d-1", "duplicate"), ("d-2", "duplicate"), ("d-3", "created"),
                       ("d-2", "created")]  # fmt: skip


async def test_spool_survives_a_restart_of_the_server(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory, spool_dir: Path, prefix: str
) -> None:
    settings = settings_for(redis_url=own_redis.url)
    async with serving(settings) as client:
        await asyncio.to_thread(own_redis.stop)
        answer = await deliver(client, push_body(sha(5)), delivery_id="d-5")
    assert answer.status_code == 202
    assert len(spooled(spool_dir)) == 1

    await restart(own_redis)
    async with serving(settings) as client:
        await eventually(lambda: asyncio.to_thread(lambda: not spooled(spool_dir)), 15, "replay")
        job_id = (await jobs_by_delivery(own_redis.url, prefix))["d-5"]
        job = (await client.get(f"/jobs/{job_id[0]}", headers=READ)).json()

    assert job["commit"] == sha(5)
    assert job["status"] == "pending"
    # replayed by another server process, the job still names the request that brought it
    assert job["request_id"] == answer.headers["x-request-id"]


async def test_redis_down_with_the_spool_off_is_a_503(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory
) -> None:
    async with serving(settings_for(redis_url=own_redis.url, spool_dir=None)) as client:
        await asyncio.to_thread(own_redis.stop)
        answer = await deliver(client, push_body(sha(1)))

    assert_error(answer, 503, "service_unavailable")
    assert "spool is off" in answer.json()["message"]


async def test_redis_down_with_the_spool_full_is_a_503(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory, spool_dir: Path
) -> None:
    limit = 1000
    async with serving(settings_for(redis_url=own_redis.url, spool_max_bytes=limit)) as client:
        await asyncio.to_thread(own_redis.stop)
        first = await deliver(client, push_body(sha(1)))
        second = await deliver(client, push_body(sha(2)))

    assert first.status_code == 202
    assert limit / 2 < spooled(spool_dir)[0].stat().st_size <= limit
    assert_error(second, 503, "service_unavailable")
    assert "spool is full" in second.json()["message"]
    assert len(spooled(spool_dir)) == 1


async def test_ignored_delivery_needs_no_redis_and_no_spool(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory, spool_dir: Path
) -> None:
    async with serving(settings_for(redis_url=own_redis.url)) as client:
        await asyncio.to_thread(own_redis.stop)
        answer = await deliver(client, push_body(sha(1), message="docs [skip ci]"))

    assert answer.status_code == 200
    assert answer.json()["ignored"] == "skip_ci"
    assert spooled(spool_dir) == []


async def test_unreadable_spool_file_is_set_aside_and_the_rest_replayed(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory, spool_dir: Path, prefix: str
) -> None:
    settings = settings_for(redis_url=own_redis.url)
    async with serving(settings) as client:
        await asyncio.to_thread(own_redis.stop)
        await deliver(client, push_body(sha(1)), delivery_id="d-ok")
    (spool_dir / "0000000000001-gitea-broken.json").write_bytes(b"{not json")

    await restart(own_redis)
    async with serving(settings):
        await eventually(lambda: asyncio.to_thread(lambda: not spooled(spool_dir)), 15, "replay")

    assert [p.name for p in spool_dir.iterdir()] == ["0000000000001-gitea-broken.json.bad"]
    assert list(await jobs_by_delivery(own_redis.url, prefix)) == ["d-ok"]


async def test_redis_too_slow_to_store_spools_and_the_late_write_still_makes_one_job(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory, spool_dir: Path, prefix: str
) -> None:
    admin = Redis.from_url(own_redis.url)
    try:
        async with serving(settings_for(redis_url=own_redis.url, store_deadline="200ms")) as client:
            # Redis still answers reads but holds every write: the job cannot be stored in time
            await admin.client_pause(10_000, all=False)
            answer = await deliver(client, push_body(sha(4)), delivery_id="d-slow")
            await admin.client_unpause()
            await eventually(
                lambda: asyncio.to_thread(lambda: not spooled(spool_dir)), 15, "replay"
            )
            entries = (await client.get("/webhook/deliveries", headers=READ)).json()["deliveries"]
    finally:
        await admin.aclose()

    assert answer.status_code == 202
    assert answer.json() == {"spooled": True, "delivery_id": "d-slow"}
    assert [len(ids) for ids in (await jobs_by_delivery(own_redis.url, prefix)).values()] == [1]
    # the held write landed once Redis went on; the replay found its delivery key
    assert [(e["decision"], e["spooled"]) for e in entries] == [("duplicate", True)]
