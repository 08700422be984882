"""Slow-loris clients against the server: what they hold, and what others see meanwhile.

    .venv/bin/python -m bench.faults.slow_loris [--clients 1000] [--timeout 30]

One raibid-api process (default settings but ``server.header_timeout`` / ``body_timeout``
``--timeout`` seconds) on its own redis-server. ``--clients`` connections each send a request
line and then one header byte a second, the way a slow-loris client does, while a probe asks
``GET /health`` and ``GET /jobs`` ten times a second. The table gives the server's open files
before, at the peak and after; how the slow clients' requests ended (status, and seconds from
their first byte to the server cutting them); and the probe's answers and latency meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import uvloop

from bench.common import format_table, machine_summary, percentile
from bench.webhooks.run import start_raibid
from raibid_api.embedded import EmbeddedRedis


def open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def slow_client(port: int, stop: asyncio.Event) -> tuple[int, float]:
    """One trickling request: the status it ended with (0: closed without one) and its life."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"GET /health HTTP/1.1\r\nHost: ci\r\nX-Slow: ")
    answer = asyncio.ensure_future(reader.read(65536))
    while not stop.is_set() and not answer.done():
        await asyncio.wait([answer], timeout=1.0)
        if not answer.done():
            writer.write(b"a")
    if not answer.done():
        answer.cancel()
    writer.transport.abort()
    head = answer.result() if answer.done() and not answer.cancelled() else b""
    status = int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, time.monotonic() - started


async def probe(base: str, stop: asyncio.Event) -> list[tuple[int, float]]:
    """``GET /health`` and ``GET /jobs`` ten times a second: status and seconds of each."""
    seen: list[tuple[int, float]] = []
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as http:
        while not stop.is_set():
            for path in ("/health", "/jobs"):
                started = time.perf_counter()
                try:
                    status = (await http.get(path)).status_code
                except httpx.TransportError:
                    status = 0
                seen.append((status, time.perf_counter() - started))
            await asyncio.sleep(0.1)
    return seen


async def run(clients: int, deadline: int) -> None:
    with tempfile.TemporaryDirectory() as folder, EmbeddedRedis(Path(folder) / "redis") as redis:
        server = start_raibid(
            redis.url, Path(folder), "warning",
            extra={"server": {"header_timeout": f"{deadline}s", "body_timeout": f"{deadline}s"},
                   "auth": {"anonymous_read": True}},
        )  # fmt: skip
        pid = server.child.pid
        base = f"http://127.0.0.1:{server.port}"
        try:
            before = open_files(pid)
            stop = asyncio.Event()
            probing = asyncio.ensure_future(probe(base, stop))
            slow = [asyncio.ensure_future(slow_client(server.port, stop)) for _ in range(clients)]
            peak = before
            while not all(task.done() for task in slow):
                peak = max(peak, open_files(pid))
                await asyncio.wait(slow, timeout=0.5)
            ended = [task.result() for task in slow]
            stop.set()
            seen = await probing
            after = open_files(pid)
        finally:
            server.child.stop()
    latencies = [seconds for _, seconds in seen]
    lives = [life for _, life in ended]
    print(machine_summary())
    print(format_table(
        ["measure", "value"],
        [
            ["slow clients", clients],
            ["their ends (status: count)", dict(Counter(status for status, _ in ended))],
            ["seconds to the cut, median / max",
             f"{statistics.median(lives):.1f} / {max(lives):.1f}"],
            ["server open files before / peak / after", f"{before} / {peak} / {after}"],
            ["probe requests (status: count)", dict(Counter(status for status, _ in seen))],
            ["probe p50 / p99 / max ms",
             f"{percentile(latencies, 50) * 1000:.1f} / {percentile(latencies, 99) * 1000:.1f}"
             f" / {max(latencies) * 1000:.1f}"],
        ],
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--timeout", type=int, default=30)
    args = parser.parse_args()
    uvloop.run(run(args.clients, args.timeout))


if __name__ == "__main__":
    main()
