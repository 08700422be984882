"""Fixtures of the webhook HTTP tests: the app under its lifespan on a real Redis, per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from redis.asyncio import Redis

from raibid_api.app import create_app
from raibid_api.config import Settings, load_settings
from raibid_api.embedded import EmbeddedRedis
from tests.integration.api.client import PUBLIC_URL, TOKENS
from tests.unit.webhooks.webhook_samples import SECRET

SettingsFactory = Callable[..., Settings]
AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
SIGNED: dict[str, Any] = {
    "gitea": {"secret": SECRET},
    "forgejo": {"secret": SECRET},
    "github": {"secret": SECRET},
    # high enough for any test but the rate-limit ones, which set their own
    "rate_limit_per_minute": 100_000,
}


@pytest.fixture(autouse=True)
def captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """The app's log events, captured instead of rendered (rendering tracebacks is slow)."""
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as events:
        yield events


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


@asynccontextmanager
async def serving(
    settings: Settings, client_address: tuple[str, int] = ("192.0.2.10", 40000)
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``create_app(settings)`` under its lifespan, calling from ``client_address``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client_address)
        async with httpx.AsyncClient(transport=transport, base_url="http://raibid.test") as client:
            yield client


@pytest.fixture
async def client(
    settings_for: SettingsFactory, raw_redis: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app where every forge signs with the test secret."""
    async with serving(settings_for()) as api:
        yield api
