"""Paging while new jobs arrive neither repeats nor skips a job."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from raibid_api.config import RedisSettings
from raibid_api.domain.jobs import JobFilter, JobId, JobStatus
from raibid_api.embedded import EmbeddedRedis
from raibid_api.jobs.cursor import CursorCodec
from raibid_api.jobs.service import JobService, ManualTrigger
from raibid_api.storage.connection import create_redis
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys
from tests.support.factories import ManualClock

BRANCHES = ["main", "dev"]


async def walk(
    url: str, prefix: str, initial: list[str], inserts: list[list[str]], limit: int,
    status: JobStatus | None,
) -> None:  # fmt: skip
    redis = create_redis(url, RedisSettings())
    clock = ManualClock()
    store = JobStore(redis, Keys(prefix), retention_s=60, status_maxlen=10)
    service = JobService(store, clock, CursorCodec(b"k" * 32), public_url="http://ci",
                         clone_url_schemes=["https"])  # fmt: skip

    added = 0

    async def add(branch: str) -> dict[str, object]:
        nonlocal added
        added += 1
        if added % 2:
            clock.advance(0.001)  # two jobs in each millisecond: tied scores
        return await service.trigger(ManualTrigger("o/r", "https://h/o/r.git", branch=branch))

    try:
        existing = [await add(branch) for branch in initial]
        if status is JobStatus.CANCELLED:
            for job in existing[::2]:
                await service.cancel(JobId(str(job["id"])))
        flt = JobFilter(status=status, branch="main")
        matching = [
            job for i, job in enumerate(existing)
            if job["branch"] == "main" and (status is None or i % 2 == 0)
        ]  # fmt: skip
        # newest first; jobs created in the same millisecond by id, descending
        matching.sort(key=lambda job: (str(job["created_at"]), str(job["id"])), reverse=True)
        expected = [job["id"] for job in matching]
        seen: list[str] = []
        cursor = None
        page_number = 0
        while True:
            page = await service.list(flt, cursor, limit)
            seen += [job["id"] for job in page.jobs]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            for branch in inserts[page_number % len(inserts)] if inserts else []:
                await add(branch)
            page_number += 1
        # a job created during the walk may show up (when it ties with the cursor), but every
        # job that existed before comes exactly once, in order, and nothing comes twice
        assert [job_id for job_id in seen if job_id in set(expected)] == expected
        assert len(set(seen)) == len(seen)
    finally:
        async for key in redis.scan_iter(match=f"{prefix}:*"):
            await redis.delete(key)
        await redis.aclose()


@hsettings(max_examples=25, deadline=None, database=None)
@given(
    initial=st.lists(st.sampled_from(BRANCHES), max_size=30),
    inserts=st.lists(st.lists(st.sampled_from(BRANCHES), max_size=3), max_size=4),
    limit=st.integers(min_value=1, max_value=7),
    status=st.sampled_from([None, JobStatus.CANCELLED]),
)
def test_paging_with_inserts_between_pages_sees_each_older_job_once(
    redis_server: EmbeddedRedis,
    initial: list[str],
    inserts: list[list[str]],
    limit: int,
    status: JobStatus | None,
) -> None:
    asyncio.run(walk(redis_server.url, "pg", initial, inserts, limit, status))
