"""How long a scrape of `GET /metrics` takes with 100,000 jobs stored (target: p99 ≤ 50 ms).

    .venv/bin/python -m bench.metrics.scrape [--jobs 100000] [--scrapes 1000]

A private redis-server holds a seeded history of ``--jobs`` jobs (`bench.jobs.seed`: every
index, the queue stream and its group). One server runs with ``metrics.cache`` at 1 ms, so every
scrape reads Redis (the worst case: one Prometheus scraping every few seconds never hits the
cache either), after traffic on its routes and webhook intake, so its histograms carry the
children a busy server has. Then ``--scrapes`` scrapes, one after another over one keep-alive
connection, as Prometheus makes them; the figures are client-side latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvloop
import yaml
from redis import Redis

from bench.common import ChildProcess, machine_summary, percentile, wait_for_http
from bench.jobs.loadgen import run_wrk
from bench.jobs.seed import Shape, seed
from bench.jobs.servers import AUTH, READ_TOKEN
from bench.webhooks.load import run_load
from bench.webhooks.run import SECRET, cpu_seconds
from raibid_api.embedded import EmbeddedRedis, free_port
from raibid_api.storage.keys import Keys

START_TIMEOUT = 60.0


def start(redis_url: str, workdir: Path, cache: str) -> tuple[ChildProcess, str]:
    """The server, with the bench's tokens and secrets and ``metrics.cache``."""
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": redis_url},
        "auth": {"tokens": [{"name": "reader", "scopes": ["read"], "value": READ_TOKEN}]},
        "webhooks": {
            "gitea": {"secret": SECRET}, "github": {"secret": SECRET},
            "rate_limit_per_minute": 1_000_000_000, "spool_dir": str(workdir / "spool"),
        },
        "dispatch": {"mode": "none"},
        "logging": {"level": "warning", "format": "json"},
        "metrics": {"cache": cache},
    }  # fmt: skip
    path = workdir / "server.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAIBID_")}
    command = [sys.executable, "-m", "raibid_api", "serve", "--config", str(path)]
    child = ChildProcess(command, workdir / "server.log", env=env).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/ready", START_TIMEOUT)
    except TimeoutError:
        tail = child.output_tail()
        child.stop()
        raise RuntimeError(f"the server did not start:\n{tail}") from None
    return child, base


def traffic(base: str, job_ids: list[str]) -> None:
    """Requests on the usual routes, so the histograms have the children of a busy server."""
    paths = [f"/jobs/{job_id}" for job_id in random.Random(5).sample(job_ids, 500)]
    paths += ["/jobs?status=failed", "/jobs?status=success&limit=20", "/queue", "/agents",
              "/webhook/deliveries", f"/jobs/{job_ids[0]}/logs", "/nowhere"]  # fmt: skip
    run_wrk(base, paths, AUTH, duration=3, connections=16)
    port = int(base.rpartition(":")[2])
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_load(port, SECRET.encode(), connections=8, seconds=3))


def scrape_times(base: str, scrapes: int) -> tuple[list[float], list[float], int]:
    """Each scrape's latency (ms), each `GET /health`'s between them (ms), the body's size.

    `/health` does no work: its latency is this machine's floor for one request.
    """
    times: list[float] = []
    floor: list[float] = []
    size = 0
    with httpx.Client(headers=AUTH, timeout=10) as client:
        for _ in range(scrapes):
            started = time.perf_counter()
            answer = client.get(f"{base}/metrics")
            times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
            size = len(answer.content)
            started = time.perf_counter()
            client.get(f"{base}/health").raise_for_status()
            floor.append((time.perf_counter() - started) * 1000)
    return times, floor, size


def summary(name: str, times: list[float]) -> str:
    """Median, p90, p99 and max of ``times`` (ms)."""
    return (
        f"{name}: p50 {statistics.median(times):.2f} ms, p90 {percentile(times, 90):.2f} ms, "
        f"p99 {percentile(times, 99):.2f} ms, max {max(times):.2f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    """Seed, start, warm up, scrape, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=1_000)
    args = parser.parse_args(argv)
    print(machine_summary(), flush=True)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as redis:
        client = Redis.from_url(redis.url, decode_responses=True)
        started = time.perf_counter()
        seeded = seed(client, Keys("raibid"), Shape(jobs=args.jobs), time.time_ns() // 1_000_000)
        stored = client.zcard("raibid:index:all")
        client.close()
        print(f"seeded {stored:,} jobs in {time.perf_counter() - started:.1f} s", flush=True)
        child, base = start(redis.url, Path(tmp), "1ms")
        try:
            traffic(base, seeded.job_ids)
            scrape_times(base, 20)  # warm
            cpu = cpu_seconds(child.pid)
            times, floor, size = scrape_times(base, args.scrapes)
            cpu_ms = 1000 * (cpu_seconds(child.pid) - cpu) / args.scrapes
        finally:
            child.stop()
    print(f"\n{args.scrapes} scrapes of /metrics, {stored:,} jobs stored, every scrape reads Redis")
    print(f"body: {size:,} bytes; server CPU per scrape: {cpu_ms:.2f} ms")
    print(summary("GET /metrics", times))
    print(summary("GET /health between them (the machine's floor)", floor))


if __name__ == "__main__":
    main()
