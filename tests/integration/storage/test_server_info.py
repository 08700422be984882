"""The start-up warnings about the Redis server's own settings, from what a real Redis reports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from raibid_api.storage.server_info import warn_about_redis
from tests.support.logs import LogEvents
from tests.support.redis_nodes import RedisNode


@pytest.fixture
def evicting(tmp_path: Path) -> Iterator[RedisNode]:
    node = RedisNode(tmp_path / "redis", ["--maxmemory", "64mb", "--maxmemory-policy",
                                          "allkeys-lru"]).start()  # fmt: skip
    yield node
    node.stop()


@pytest.fixture
async def client(evicting: RedisNode) -> AsyncIterator[Redis]:
    redis = Redis.from_url(evicting.url, decode_responses=True)
    yield redis
    await redis.aclose()


async def test_an_evicting_policy_and_missing_replicas_are_each_one_warning(
    client: Redis, captured_logs: LogEvents
) -> None:
    await warn_about_redis(client, replica_acks=1)

    warnings = [str(e["event"]) for e in captured_logs if e["log_level"] == "warning"]
    assert len(warnings) == 2, warnings
    assert "maxmemory-policy is allkeys-lru" in warnings[0]
    assert "noeviction" in warnings[0]
    assert "0 connected replicas and redis.min_replica_acks is 1" in warnings[1]


async def test_a_redis_set_as_advised_gets_no_warning(
    redis: Redis, captured_logs: LogEvents
) -> None:
    await warn_about_redis(redis, replica_acks=0)  # the suite's Redis: noeviction, no WAIT

    assert [e for e in captured_logs if e["log_level"] == "warning"] == []
