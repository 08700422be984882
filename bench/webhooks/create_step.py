"""The create step alone: what one webhook-shaped `JobStore.create` costs each side.

    .venv/bin/python -m bench.webhooks.create_step [--creates 3000] [--concurrency 16]

Against a private redis-server (no append-only file), after 200 warm-up creates: ``--creates``
creates, ``--concurrency`` at a time (so `ScriptBatcher` pipelines them as under load), each with
a delivery key, a content key, both rate limits (set far above the load) and a line of work it
supersedes in (one in 50 branches, so most creates cancel the pending job before them). It prints
this process's CPU per create (building the call, redis-py's packing and parsing, the event loop)
and Redis's (``INFO cpu``, the script's run). No HTTP: the webhook benchmark measures the whole
delivery; this one isolates the step, whose share of it is small beside the machine's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from bench.common import machine_summary
from raibid_api.config import RedisSettings
from raibid_api.domain.jobs import JOB_FIELDS, Delivery, Job, Supersession, format_time
from raibid_api.domain.jobs import new_job_id as job_id
from raibid_api.domain.limits import RateLimit
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage.connection import create_redis
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys

REPO = "acme/widgets"
BRANCHES = 50
WARM_UP = 200
LIMIT = RateLimit("webhook deliveries", [("source", "192.0.2.1"), ("repo", REPO)], 10**9)


def webhook_job(n: int, now_ms: int) -> Job:
    """A pending push job as the intake makes it, the ``n``-th of the run."""
    job: Job = dict.fromkeys(JOB_FIELDS)
    branch = f"b{n % BRANCHES}"
    job |= {
        "id": job_id(), "status": "pending", "created_at": format_time(now_ms), "attempt": 1,
        "repo": REPO, "clone_url": f"https://git.example.test/{REPO}.git",
        "ref": f"refs/heads/{branch}", "branch": branch, "commit": f"{n % 2**32:040x}",
        "event": "push", "forge": "gitea", "delivery_id": f"d-{n}", "author": "Ada",
        "pusher": "ada", "message": "change things",
    }  # fmt: skip
    return job


async def create(store: JobStore, n: int) -> None:
    """Store the ``n``-th job as a webhook delivery does."""
    now_ms = int(time.time() * 1000)
    await store.create(
        webhook_job(n, now_ms), now_ms, delivery=Delivery("gitea", f"d-{n}"), coalesce=True,
        limit=LIMIT, supersede=Supersession(REPO, f"branch:b{n % BRANCHES}", "superseded"),
    )  # fmt: skip


async def redis_cpu_s(redis: Redis) -> float:
    """The CPU seconds the redis-server has used so far."""
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(url: str, creates: int, concurrency: int) -> tuple[float, float]:
    """This process's and Redis's CPU µs per create."""
    redis = create_redis(url, RedisSettings())
    store = JobStore(redis, Keys("bench"), retention_s=86_400, status_maxlen=1000)
    await store.ensure_queue_group()
    for n in range(creates, creates + WARM_UP):
        await create(store, n)
    server_before = await redis_cpu_s(redis)
    client_before = time.process_time()
    for start in range(0, creates, concurrency):
        await asyncio.gather(*(create(store, n) for n in range(start, start + concurrency)))
    client = time.process_time() - client_before
    server = await redis_cpu_s(redis) - server_before
    await redis.aclose()
    return client / creates * 1e6, server / creates * 1e6


def main() -> None:
    """Parse the arguments, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(", ".join(f"{k}: {v}" for k, v in machine_summary().items()))
    with (
        tempfile.TemporaryDirectory() as data,
        EmbeddedRedis(Path(data), appendonly=False) as server,
    ):
        client_us, server_us = asyncio.run(measure(server.url, args.creates, args.concurrency))
    print(f"{args.creates} creates, {args.concurrency} at a time: "
          f"client CPU {client_us:.1f} µs/create, Redis CPU {server_us:.1f} µs/create")  # fmt: skip


if __name__ == "__main__":
    main()
