"""Many `/events` clients on one server: each gets every event; those gone leave nothing behind.

The server runs in this process (a real uvicorn on a real socket, with a real Redis), so its tasks
and file descriptors can be counted directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.support.live_logs import READ, STREAM_TIMEOUT, LiveServer
from tests.support.polling import eventually

CLIENTS = 200
CHURN = 500
JOBS = 10


# `aconnect_sse` writes its Accept header into the headers it is given: each call gets a copy of
# READ, or every later test of the process would ask for event streams


def _client(server: LiveServer, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=str(server.http.base_url),
        limits=httpx.Limits(max_connections=connections),
        timeout=STREAM_TIMEOUT * 3,
    )


async def _statuses(events: AsyncIterator[ServerSentEvent], count: int) -> list[tuple[str, str]]:
    got: list[tuple[str, str]] = []
    async for event in events:
        if event.event == "status":
            data = json.loads(event.data)
            got.append((data["job_id"], data["status"]))
            if len(got) == count:
                break
    return got


async def _follower(
    http: httpx.AsyncClient, ready: asyncio.Event, count: int, subscribed: list[int]
) -> list[tuple[str, str]]:
    async with aconnect_sse(http, "GET", "/events", headers=dict(READ)) as source:
        assert source.response.status_code == 200
        events = source.aiter_sse()
        async for event in events:
            if event.event == "ready":
                break
        subscribed.append(1)
        await ready.wait()
        return await _statuses(events, count)


async def test_200_clients_each_receive_every_status_change(server: LiveServer) -> None:
    go = asyncio.Event()
    subscribed: list[int] = []
    async with _client(server, CLIENTS + 10) as http:
        followers = [
            asyncio.create_task(_follower(http, go, JOBS * 2, subscribed)) for _ in range(CLIENTS)
        ]
        await eventually(lambda: len(subscribed) == CLIENTS, 30, f"{CLIENTS} clients")
        go.set()
        expected: list[tuple[str, str]] = []
        for _ in range(JOBS):
            held = await server.claimed_job()
            expected += [(held.id, "pending"), (held.id, "running")]
        results = await asyncio.wait_for(asyncio.gather(*followers), 60)
    assert all(result == expected for result in results)


def _fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


async def _connect_and_leave(http: httpx.AsyncClient) -> None:
    async with aconnect_sse(http, "GET", "/events", headers=dict(READ)) as source:
        assert source.response.status_code == 200
        async for event in source.aiter_sse():
            if event.event == "ready":
                return


async def test_500_clients_that_come_and_go_leave_no_task_connection_or_fd(
    server: LiveServer,
) -> None:
    async with _client(server, 60) as warmup:  # the shared reader and the pools, once
        await _connect_and_leave(warmup)
    await eventually(lambda: server.fanout.subscriber_count() == 0, what="no subscriber")
    redis_clients = len(await server.redis.client_list())  # (opens this test's connection)
    tasks, fds = len(asyncio.all_tasks()), _fds()

    async with _client(server, 50) as http:
        for start in range(0, CHURN, 50):
            await asyncio.gather(*(_connect_and_leave(http) for _ in range(start, start + 50)))
    await eventually(lambda: server.fanout.subscriber_count() == 0, what="no subscriber")
    await eventually(lambda: len(asyncio.all_tasks()) <= tasks, what=f"{tasks} tasks")
    await eventually(lambda: _fds() <= fds, what=f"{fds} open files")
    assert len(await server.redis.client_list()) <= redis_clients
