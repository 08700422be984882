"""The shared reader on real Redis: waking a blocked read, dropping slow clients, shutting down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from raibid_api.config import RedisSettings
from raibid_api.embedded import EmbeddedRedis
from raibid_api.logs.fanout import LogFanout, Subscription
from raibid_api.storage.connection import create_redis
from raibid_api.storage.event_store import EventReader, EventStore
from raibid_api.storage.keys import Keys
from tests.support.aliases import RawRedis
from tests.support.polling import eventually

# so long that only CLIENT UNBLOCK can make a waiting read pick up a new stream within a test
NEVER_MS = 600_000


@dataclass
class Running:
    fanout: LogFanout
    task: asyncio.Task[None]
    redis: RawRedis
    keys: Keys

    async def append(self, job_id: str, *lines: str) -> list[str]:
        return [
            await self.redis.xadd(
                self.keys.events(job_id), {"type": "log", "t": "", "stream": "stdout", "line": line}
            )
            for line in lines
        ]

    async def blocked_readers(self) -> int:
        clients = await self.redis.client_list()
        return sum(1 for c in clients if c["cmd"] == "xread" and "b" in c["flags"])


@pytest.fixture
async def running(
    redis_server: EmbeddedRedis, redis: RawRedis, keys: Keys, request: pytest.FixtureRequest
) -> AsyncIterator[Running]:
    """A fan-out whose reader loop runs; its inbox capacity is the indirect parameter (100)."""
    capacity = getattr(request, "param", 100)
    reader = EventReader(
        create_redis(redis_server.url, RedisSettings(), blocking=True), redis, keys
    )
    fanout = LogFanout(EventStore(redis, keys), reader, capacity=capacity, block_ms=NEVER_MS)
    task = asyncio.create_task(fanout.run())
    yield Running(fanout, task, redis, keys)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def receive_lines(inbox: Subscription, count: int) -> list[str]:
    lines: list[str] = []
    async with asyncio.timeout(5):
        while len(lines) < count:
            batch = await inbox.receive_entries(5)
            assert batch is not None, "the subscription was closed"
            lines += [fields["line"] for _, fields in batch]
    return lines


async def test_entries_appended_after_subscribe_reach_the_inbox(running: Running) -> None:
    await running.append("job-a", "old")
    async with running.fanout.subscribe("job-a") as inbox:
        await running.append("job-a", "new 1", "new 2")
        assert await receive_lines(inbox, 2) == ["new 1", "new 2"]


async def test_new_stream_is_picked_up_while_the_reader_waits_on_another(running: Running) -> None:
    async with running.fanout.subscribe("job-a"):
        await wait_blocked(running)
        async with running.fanout.subscribe("job-b") as inbox_b:
            await running.append("job-b", "hello b")
            assert await receive_lines(inbox_b, 1) == ["hello b"]


async def wait_blocked(running: Running) -> None:
    async def one_blocked() -> bool:
        return await running.blocked_readers() == 1

    await eventually(one_blocked, 5, "the reader to block")


@pytest.mark.parametrize("running", [4], indirect=True)
async def test_client_whose_inbox_overflows_is_dropped_and_others_keep_going(
    running: Running,
) -> None:
    async with (
        running.fanout.subscribe("job") as slow,
        running.fanout.subscribe("job") as quick,
    ):
        await running.append("job", "1", "2", "3")
        assert await receive_lines(quick, 3) == ["1", "2", "3"]
        await running.append("job", "4", "5")
        assert await receive_lines(quick, 2) == ["4", "5"]
        assert slow.closed
        assert await slow.receive(0) is None
        assert running.fanout.subscriber_count() == 1
        await running.append("job", "6")
        assert await receive_lines(quick, 1) == ["6"]


async def test_last_subscriber_leaving_stops_watching_the_stream(running: Running) -> None:
    async with running.fanout.subscribe("job"):
        async with running.fanout.subscribe("job"):
            assert running.fanout.watched_jobs == {"job"}
        assert running.fanout.watched_jobs == {"job"}
    assert running.fanout.watched_jobs == frozenset()
    assert running.fanout.subscriber_count() == 0


async def test_one_reader_connection_serves_many_jobs(running: Running) -> None:
    before = len(await running.redis.client_list())
    async with contextlib.AsyncExitStack() as stack:
        inboxes = [
            await stack.enter_async_context(running.fanout.subscribe(f"job-{n}")) for n in range(20)
        ]
        await wait_blocked(running)
        assert len(await running.redis.client_list()) - before <= 2
        for n in range(20):
            await running.append(f"job-{n}", f"line {n}")
        for n, inbox in enumerate(inboxes):
            assert await receive_lines(inbox, 1) == [f"line {n}"]


async def test_stopping_the_reader_closes_subscriptions_and_its_connection(
    running: Running,
) -> None:
    async with running.fanout.subscribe("job") as inbox:
        await wait_blocked(running)
        running.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running.task
        assert inbox.closed
        assert await running.blocked_readers() == 0
