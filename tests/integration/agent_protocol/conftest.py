"""Fixtures of the agent protocol tests: the app in-process on the session Redis, its clock in hand.

The app runs under its own lifespan behind `httpx.ASGITransport`, with ``dispatch.mode: none`` so no
built-in agent competes for jobs. The clock the job service, the agent service and the reaper share
is replaced by a `ManualClock`, so a lease or a timeout runs out when the test says so.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from raibid_api.app import create_app
from raibid_api.config import load_settings
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage.keys import Keys
from tests.support.agent_protocol import LEASE_SECONDS, TOKENS, ProtocolApp, ProtocolFactory
from tests.support.aliases import RawRedis
from tests.support.factories import ManualClock


@pytest.fixture
def start_protocol(
    redis_server: EmbeddedRedis,
    prefix: str,
    keys: Keys,
    redis: RawRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> ProtocolFactory:
    """``async with start_protocol(max_attempts=1): ...``: the app with these ``jobs`` settings."""

    @asynccontextmanager
    async def start(**jobs: Any) -> AsyncIterator[ProtocolApp]:
        settings = load_settings(
            None,
            redis={"url": redis_server.url, "key_prefix": prefix},
            auth={"tokens": TOKENS},
            dispatch={"mode": "none"},
            # one sweep at start-up, then never again: the tests call reap_once themselves
            jobs={"lease": f"{LEASE_SECONDS}s", "reaper_interval": "1h"} | jobs,
            webhooks={"spool_dir": str(tmp_path / "spool")},
        )
        app = create_app(settings)
        clock = ManualClock(time.time_ns() // 1_000_000)
        async with app.router.lifespan_context(app):
            state = app.state.raibid
            # The composition root builds one SystemClock and hands that same object to every
            # service; pointing it at the test's clock moves time for all of them at once.
            monkeypatch.setattr(state.clock, "now_ms", clock.now_ms)
            async with ProtocolApp.serving(app, redis, keys, clock) as api:
                yield api

    return start


@pytest.fixture
async def api(start_protocol: ProtocolFactory) -> AsyncIterator[ProtocolApp]:
    """The app with the default settings of these tests."""
    async with start_protocol() as started:
        yield started
