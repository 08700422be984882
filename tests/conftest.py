"""Shared fixtures: one real redis-server per test session, and a key prefix per test."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from redis.asyncio import Redis

from raibid_api.config import RedisSettings
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage.connection import create_redis
from raibid_api.storage.keys import Keys

# redis-py annotates replies as unions of bytes, str and awaitables; tests that inspect raw
# replies of a decode_responses client take it as this alias
RawRedis: TypeAlias = Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "webhooks"


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


def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``check`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)
