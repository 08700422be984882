"""A storm of cancellations in the middle of pooled Redis calls leaves the pool whole."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from raibid_api.config import RedisSettings
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage import connection
from raibid_api.storage.connection import create_redis
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys
from tests.support.factories import make_job

T0 = 1_790_000_000_000
TASKS = 64
STORM = 2000  # cancellations, one a millisecond: two seconds on an idle machine


async def test_cancellation_storm_leaks_no_connection_and_mixes_no_reply(
    redis_server: EmbeddedRedis, keys: Keys
) -> None:
    settings = RedisSettings(max_connections=8, pool_timeout=timedelta(seconds=2))
    redis = create_redis(redis_server.url, settings)
    store = JobStore(redis, keys, retention_s=60, status_maxlen=100)
    jobs = [make_job(T0 + i) for i in range(TASKS)]
    for i, job in enumerate(jobs):
        await store.create(job, T0 + i)
    wrong: list[tuple[str, object]] = []
    completed = 0

    async def reader(job_id: str) -> None:
        nonlocal completed
        while True:
            got = await store.get(job_id)
            if got is None or got["id"] != job_id:
                wrong.append((job_id, got and got["id"]))
            completed += 1

    tasks = {job["id"]: asyncio.create_task(reader(job["id"])) for job in jobs}
    rng = random.Random(7)
    for _ in range(STORM):
        await asyncio.sleep(0.001)  # the storm's pace: one cancellation per millisecond
        job_id = rng.choice(list(tasks))
        tasks[job_id].cancel()
        tasks[job_id] = asyncio.create_task(reader(job_id))
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    await asyncio.gather(*connection._background, return_exceptions=True)

    pool = redis.connection_pool
    assert completed > 100  # the readers got replies between the cancellations
    assert wrong == []
    assert len(pool._in_use_connections) == 0
    assert len(pool._available_connections) <= 8
    again = await asyncio.gather(*(store.get(job["id"]) for job in jobs))
    assert [job and job["id"] for job in again] == [job["id"] for job in jobs]
    await redis.aclose()


async def test_timeout_around_a_storage_call_does_not_poison_the_pool(
    redis_server: EmbeddedRedis, keys: Keys
) -> None:
    redis = create_redis(redis_server.url, RedisSettings(max_connections=2))
    store = JobStore(redis, keys, retention_s=60, status_maxlen=100)
    job = make_job(T0)
    await store.create(job, T0)
    for _ in range(200):
        try:
            async with asyncio.timeout(0):
                await store.get(job["id"])
        except TimeoutError:
            pass
    await asyncio.gather(*connection._background, return_exceptions=True)
    got = await asyncio.gather(*(store.get(job["id"]) for _ in range(10)))
    assert {g and g["id"] for g in got} == {job["id"]}
    assert len(redis.connection_pool._in_use_connections) == 0
    await redis.aclose()
