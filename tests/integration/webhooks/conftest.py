"""Fixtures of the webhook HTTP tests: the app under its lifespan on a real Redis, per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from raibid_api.config import Settings, load_settings
from raibid_api.embedded import EmbeddedRedis
from tests.support.aliases import SettingsFactory
from tests.support.api import PUBLIC_URL, TOKENS
from tests.support.webhook_app import SIGNED, serving


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    """A redis-server of this test alone, which the test may stop, start again, or pause."""
    server = EmbeddedRedis(tmp_path / "redis-data", appendonly=True)
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """The spool directory of the test's app."""
    return tmp_path / "spool"


@pytest.fixture
def settings_for(redis_server: EmbeddedRedis, prefix: str, spool_dir: Path) -> SettingsFactory:
    """Settings of a test app; ``webhooks`` keywords are merged into the signed defaults."""

    def build(redis_url: str | None = None, **webhooks: Any) -> Settings:
        return load_settings(
            None,
            server={"public_url": PUBLIC_URL},
            redis={"url": redis_url or redis_server.url, "key_prefix": prefix},
            auth={"tokens": TOKENS},
            dispatch={"mode": "none"},
            webhooks=SIGNED | {"spool_dir": str(spool_dir)} | webhooks,
        )

    return build


@pytest.fixture
async def client(
    settings_for: SettingsFactory, raw_redis: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app where every forge signs with the test secret."""
    async with serving(settings_for()) as api:
        yield api
