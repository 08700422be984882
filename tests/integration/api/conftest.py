"""Fixtures of the HTTP-level tests: the app under its lifespan on the session Redis, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from raibid_api.config import Settings, load_settings
from raibid_api.embedded import EmbeddedRedis
from tests.support.aliases import SettingsFactory
from tests.support.api import PUBLIC_URL, TOKENS, running_app, snapshot


@pytest.fixture
def settings_for(redis_server: EmbeddedRedis, prefix: str, tmp_path: Path) -> SettingsFactory:
    """Build the settings of a test app; keyword sections replace the defaults given here."""

    def build(**sections: Any) -> Settings:
        defaults: dict[str, Any] = {
            "server": {"public_url": PUBLIC_URL},
            "redis": {"url": redis_server.url, "key_prefix": prefix},
            "auth": {"tokens": TOKENS},
            "dispatch": {"mode": "none"},
            "webhooks": {"spool_dir": str(tmp_path / "spool")},
        }
        return load_settings(None, **(defaults | sections))

    return build


@pytest.fixture
async def client(
    settings_for: SettingsFactory, raw_redis: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with the read, write, agent and admin tokens configured."""
    async with running_app(settings_for()) as api:
        yield api


@pytest.fixture
async def anonymous_client(
    settings_for: SettingsFactory, raw_redis: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with ``auth.anonymous_read`` on."""
    async with running_app(settings_for(auth={"anonymous_read": True, "tokens": TOKENS})) as api:
        yield api


@pytest.fixture
def nothing_written(
    raw_redis: Redis, prefix: str
) -> Callable[[], AbstractAsyncContextManager[None]]:
    """``async with nothing_written(): ...`` fails when the block changed any key of the test."""

    @asynccontextmanager
    async def check() -> AsyncIterator[None]:
        before = await snapshot(raw_redis, prefix)
        assert before, "the app should have written its cursor secret and queue group already"
        yield
        after = await snapshot(raw_redis, prefix)
        assert sorted(set(after) - set(before)) == [], "keys were created"
        assert sorted(set(before) - set(after)) == [], "keys were deleted"
        changed = sorted(key for key in before if before[key] != after[key])
        assert changed == [], "keys were changed"

    return check
