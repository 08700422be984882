from __future__ import annotations

import pytest
from redis.asyncio import Redis

from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys


@pytest.fixture
async def store(redis: Redis, keys: Keys) -> JobStore:
    job_store = JobStore(redis, keys, retention_s=60, status_maxlen=1000)
    await job_store.ensure_queue_group()
    return job_store
