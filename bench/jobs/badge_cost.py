"""What status badges cost: the badge write when a job ends, and the badge read.

Side by side in one run, alternating rounds, on one embedded redis-server:

- ending a running job (`job_transition.lua`, running -> success) without the badge key (the
  script then skips the badge, as before badges existed) and with it;
- reading a branch's badge (`JobStore.badge`) against reading one job (`JobStore.get`, the
  hottest read), with ``--jobs`` finished jobs on the branch: the read does not grow with them.

    python -m bench.jobs.badge_cost --jobs 2000 --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import machine_summary
from raibid_api.config import RedisSettings
from raibid_api.domain.jobs import JOB_FIELDS, Job, format_time, new_job_id
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage.connection import create_redis
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import GROUP, Keys

REPO = "acme/widgets"
RETENTION_S = 3600


def _job(now_ms: int) -> Job:
    job: Job = dict.fromkeys(JOB_FIELDS)
    return job | {
        "id": new_job_id(), "status": "pending", "repo": REPO, "branch": "main",
        "ref": "refs/heads/main", "event": "push", "clone_url": "https://git.example/a/w.git",
        "commit": "c" * 40, "created_at": format_time(now_ms), "attempt": 1,
    }  # fmt: skip


async def _running(store: JobStore, count: int) -> list[Job]:
    jobs = []
    for _ in range(count):
        now = time.time_ns() // 1_000_000
        job = _job(now)
        await store.create(job, now, default_branch="main")
        jobs.append(await store.transition(job, "running", now))
    return jobs


async def _end(store: JobStore, keys: Keys, job: Job, *, badge: bool) -> float:
    """Seconds one running -> success transition takes, with or without the badge key."""
    job_id = str(job["id"])
    key_list = [
        keys.job(job_id), keys.index_status("running"), keys.index_status("success"),
        keys.events(job_id), keys.queue, keys.index_expiry, keys.content("none"),
        keys.index_status_repo("running", REPO), keys.index_status_repo("success", REPO),
        keys.status_events,
    ]  # fmt: skip
    if badge:
        key_list.append(keys.badge(REPO))
    now = time.time_ns() // 1_000_000
    started = time.perf_counter()
    await store._scripts.transition(  # the script itself: JobStore always passes the badge key
        key_list, job_id=job_id, expected="running", target="success", terminal=True,
        retention_s=RETENTION_S, status_maxlen=10_000, group=GROUP, expiry_ms=now,
        expiry_member=job_id, requeue_json="", token_hash="", lease_ended_by=None,
        fields={"finished_at": format_time(now)},
    )  # fmt: skip
    return time.perf_counter() - started


async def _reads(store: JobStore, job_id: str, calls: int) -> tuple[float, float]:
    """Median seconds of one badge read and of one job read, interleaved."""
    badge, get = [], []
    for _ in range(calls):
        started = time.perf_counter()
        await store.badge(REPO, None)
        badge.append(time.perf_counter() - started)
        started = time.perf_counter()
        await store.get(job_id)
        get.append(time.perf_counter() - started)
    return statistics.median(badge), statistics.median(get)


async def _measure(folder: Path, jobs: int, rounds: int) -> None:
    server = EmbeddedRedis(folder / "redis", appendonly=False).start()
    try:
        redis = create_redis(server.url, RedisSettings())
        keys = Keys("bench")
        store = JobStore(redis, keys, retention_s=RETENTION_S, status_maxlen=10_000)
        await store.ensure_queue_group()
        without: list[float] = []
        with_badge: list[float] = []
        reads: list[tuple[float, float]] = []
        for round_no in range(rounds):
            variants = [(False, without), (True, with_badge)]
            for badge, sink in variants if round_no % 2 == 0 else variants[::-1]:
                running = await _running(store, jobs)
                times = [await _end(store, keys, job, badge=badge) for job in running]
                sink.append(statistics.median(times))
            reads.append(await _reads(store, str(running[-1]["id"]), jobs))
        await redis.aclose()
    finally:
        server.stop()
    _report(jobs, rounds, without, with_badge, reads)


def _report(
    jobs: int, rounds: int, without: Sequence[float], with_badge: Sequence[float],
    reads: Sequence[tuple[float, float]],
) -> None:  # fmt: skip
    print(f"machine: {machine_summary()}")
    print(
        f"{rounds} rounds x {jobs} jobs per variant, alternating (order swapped every round); "
        "medians of the round medians"
    )
    base, new = statistics.median(without) * 1e6, statistics.median(with_badge) * 1e6
    print(f"end a job, no badge key    : {base:8.1f} us")
    print(f"end a job, badge written   : {new:8.1f} us  (x{new / base:.2f})")
    badge = statistics.median(r[0] for r in reads) * 1e6
    get = statistics.median(r[1] for r in reads) * 1e6
    print(f"read one job (GET /jobs/id): {get:8.1f} us")
    print(f"read a badge ({rounds * jobs} finished jobs on the branch): {badge:8.1f} us "
          f"(x{badge / get:.2f})")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_measure(Path(folder), args.jobs, args.rounds))


if __name__ == "__main__":
    main()
