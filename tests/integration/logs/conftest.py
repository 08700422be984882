"""Fixtures of the live-log tests: the app served by a real uvicorn on the session Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from raibid_api.config import load_settings
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage.keys import Keys
from tests.support.aliases import RawRedis
from tests.support.live_logs import TOKENS, LiveServer, ServerFactory, live_server


@pytest.fixture
def start_server(
    redis_server: EmbeddedRedis, prefix: str, keys: Keys, redis: RawRedis, tmp_path: Path
) -> ServerFactory:
    """``async with start_server(logs={...}) as server``: the app with these settings sections."""

    def start(**sections: Any) -> AbstractAsyncContextManager[LiveServer]:
        settings = load_settings(
            None,
            **{
                "redis": {"url": redis_server.url, "key_prefix": prefix},
                "auth": {"tokens": TOKENS},
                "dispatch": {"mode": "none"},
                "webhooks": {"spool_dir": str(tmp_path / "spool")},
            }
            | sections,
        )
        return live_server(settings, redis, keys)

    return start


@pytest.fixture
async def server(start_server: ServerFactory) -> AsyncIterator[LiveServer]:
    """The app with default settings, served over real HTTP."""
    async with start_server() as running:
        yield running
