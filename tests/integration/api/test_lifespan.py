"""The app's lifespan: what starting writes, and that stopping leaves nothing running."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from raibid_api.app import create_app
from raibid_api.storage.keys import GROUP, Keys
from tests.support.aliases import SettingsFactory
from tests.support.api import leftover_tasks

LIFESPANS = 20


async def test_startup_creates_the_agents_group_and_the_cursor_secret(
    settings_for: SettingsFactory, raw_redis: Redis, prefix: str
) -> None:
    app = create_app(settings_for())
    async with app.router.lifespan_context(app):
        keys = Keys(prefix)
        groups = await raw_redis.xinfo_groups(keys.queue)
        assert [(g["name"].decode(), g["last-delivered-id"].decode()) for g in groups] == [
            (GROUP, "0-0")
        ]
        assert await raw_redis.exists(keys.cursor_secret)


async def test_restart_keeps_the_cursor_secret(
    settings_for: SettingsFactory, raw_redis: Redis, prefix: str
) -> None:
    secrets = []
    for _ in range(2):
        app = create_app(settings_for())
        async with app.router.lifespan_context(app):
            secrets.append(await raw_redis.get(Keys(prefix).cursor_secret))
    assert secrets[0] == secrets[1]
    assert secrets[0]


async def test_shutdown_leaves_no_redis_call_running(
    settings_for: SettingsFactory, raw_redis: Redis
) -> None:
    # a lifespan ended right after it started catches its loops mid-call about one time in three
    left_behind = []
    for _ in range(LIFESPANS):
        app = create_app(settings_for())
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0)
        left_behind += [repr(task.get_coro()) for task in await leftover_tasks()]
    assert left_behind == []
