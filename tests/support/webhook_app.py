"""The webhook HTTP tests' app: every forge signing with the test secret, served in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from raibid_api.app import create_app
from raibid_api.config import Settings
from tests.support.webhook_samples import SECRET

SIGNED: dict[str, Any] = {
    "gitea": {"secret": SECRET},
    "forgejo": {"secret": SECRET},
    "github": {"secret": SECRET},
    # high enough for any test but the rate-limit ones, which set their own
    "rate_limit_per_minute": 100_000,
}


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


async def jobs_by_delivery(url: str, prefix: str) -> dict[str, list[str]]:
    """The ids of the jobs under ``prefix``, by the delivery that made them."""
    client = Redis.from_url(url, decode_responses=True)
    try:
        found: dict[str, list[str]] = {}
        async for key in client.scan_iter(match=f"{prefix}:job:*"):
            if not key.endswith(":events"):
                delivery = await client.hget(key, "delivery_id")
                found.setdefault(str(delivery), []).append(key.rsplit(":", 1)[1])
        return found
    finally:
        await client.aclose()


def spooled(directory: Path) -> list[Path]:
    """The deliveries waiting in the spool ``directory``."""
    return sorted(directory.glob("*.json"))
