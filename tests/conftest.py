"""Shared fixtures: one real redis-server per test session, a key prefix per test, and the log.

The fixtures' types and the helpers the tests share live in `tests.support`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog
from redis.asyncio import Redis

from raibid_api.config import RedisSettings
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage.connection import create_redis
from raibid_api.storage.keys import Keys
from tests.support.logs import LogEvents


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A private redis-server on a free loopback port (never the machine's own Redis)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False)
    with server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test alone, so tests share the server without sharing keys."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


@pytest.fixture
async def redis(redis_server: EmbeddedRedis, prefix: str) -> AsyncIterator[Redis]:
    """A client of the test server; the test's keys are deleted afterwards."""
    client = create_redis(redis_server.url, RedisSettings())
    yield client
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
async def raw_redis(redis_server: EmbeddedRedis, prefix: str) -> AsyncIterator[Redis]:
    """A byte-level client of the test server; every key of this test is deleted afterwards.

    It matches ``<prefix>*`` rather than ``<prefix>:*`` so that a second deployment a test runs
    under ``<prefix>-other`` is cleaned up too.
    """
    client = Redis.from_url(redis_server.url)
    yield client
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


@pytest.fixture(autouse=True)
def captured_logs() -> Iterator[LogEvents]:
    """Every structlog event of the test, captured instead of rendered.

    Autouse: the development console renderer draws every unhandled error as a rich traceback with
    locals, which takes seconds, and tests read responses, not rendered lines. A test that checks
    what was logged asks for this fixture by name.
    """
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as events:
        yield LogEvents(events)
