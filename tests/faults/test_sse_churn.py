"""10,000 live-log connections that come and go leave nothing behind.

The app runs under a real uvicorn in this process (so its asyncio tasks can be counted) on the
session's real Redis. Clients speak raw HTTP: a third hang up right after their request, the
others after the first event. After all of them, the process's tasks, file descriptors and
Redis connections are back to what they were after a warm-up round of as many viewers at once.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from raibid_api.config import load_settings
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage.keys import Keys
from tests.support.aliases import RawRedis
from tests.support.live_logs import READ_TOKEN, TOKENS, LiveServer, live_server
from tests.support.polling import eventually
from tests.support.processes import open_files

CYCLES = int(os.environ.get("CHURN", "10000"))
CONCURRENCY = 50
POOL = 2
CYCLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Held:
    """What the process holds that a connection could leak."""

    tasks: int
    files: int
    redis_connections: int


async def held(redis: RawRedis) -> Held:
    return Held(
        tasks=len(asyncio.all_tasks()),
        files=open_files(os.getpid()),
        redis_connections=len(await redis.client_list()),
    )


async def one_connection(port: int, job_id: str, hang_up_at_once: bool) -> None:
    """Open the job's live log, then hang up: at once, or once its first event arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /jobs/{job_id}/logs HTTP/1.1\r\nHost: ci\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {READ_TOKEN}\r\n\r\n".encode()
    )
    await writer.drain()
    if not hang_up_at_once:
        received = b""
        while b"event:" not in received:
            chunk = await reader.read(65536)
            assert chunk, "the server closed the stream before its first event"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200"), received[:200]
    writer.transport.abort()  # a client gone, not a polite close


async def churn(server: LiveServer, port: int, job_id: str) -> None:
    """`CYCLES` connections, `CONCURRENCY` at a time."""
    numbers = iter(range(CYCLES))

    async def worker() -> None:
        for n in numbers:
            await asyncio.wait_for(one_connection(port, job_id, n % 3 == 0), CYCLE_TIMEOUT)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def test_ten_thousand_sse_connections_return_tasks_files_and_redis_connections(
    redis_server: EmbeddedRedis, prefix: str, keys: Keys, redis: RawRedis, tmp_path: Path
) -> None:
    settings = load_settings(
        None,
        # a small pool, which the warm-up fills: what a pool keeps is bounded, and there before
        # the baseline
        redis={"url": redis_server.url, "key_prefix": prefix, "max_connections": POOL},
        auth={"tokens": TOKENS},
        dispatch={"mode": "none"},
        webhooks={"spool_dir": str(tmp_path / "spool")},
    )
    async with live_server(settings, redis, keys) as server:
        job = await server.claimed_job()
        await server.send_logs(job, ["compiling", "testing"])
        port = server.http.base_url.port
        assert port is not None
        # one round of `CONCURRENCY` viewers first: what viewers create for good (the shared
        # reader, the pool's connections up to its working size) is there before the baseline
        await asyncio.gather(
            *(one_connection(port, job.id, hang_up_at_once=False) for _ in range(CONCURRENCY))
        )
        await eventually(
            lambda: server.fanout.subscriber_count() == 0, what="the warm-up viewer to go"
        )
        baseline = await held(redis)

        await churn(server, port, job.id)

        seen: list[tuple[Held, list[str]]] = []

        async def back_to_baseline() -> bool:
            now = await held(redis)
            seen.append((now, sorted(repr(t.get_coro()) for t in asyncio.all_tasks())))
            return (
                now.tasks <= baseline.tasks
                and now.files <= baseline.files
                and (now.redis_connections <= baseline.redis_connections)
            )

        try:
            await eventually(back_to_baseline, timeout=30.0, what="the resources to return")
        except pytest.fail.Exception:
            pytest.fail(f"baseline {baseline}, at the end {seen[-1]}")
        assert server.fanout.subscriber_count() == 0
