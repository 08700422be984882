"""What the metrics cost on the two hottest requests: `GET /jobs/{id}` and the webhook intake.

    .venv/bin/python -m bench.metrics.overhead [--rounds 5] [--seconds 5] [--before main]

Servers side by side on one private redis-server, in alternating rounds (the order reversed
every other round, so drift on a shared machine hits them alike):

- ``metrics on``: this tree as configured by default;
- ``metrics off``: this tree with ``metrics.enabled: false`` (no request timing; the counters of
  the other parts and the Redis call timing still run);
- ``REF (no metrics)`` (with ``--before REF``, e.g. ``main``): that commit's tree of this
  repository (`git archive`) on PYTHONPATH: the server without any metric.

Phases per round: `GET /jobs/{id}` over 1,000 stored jobs with wrk (one thread, 64 connections,
closed loop), then signed webhook deliveries over 16 connections (closed loop, the load generator
of `bench.webhooks`). Each table gives medians over rounds of the answered rate and of the
server's own CPU time per answer, and each target's ratio to the first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvloop
import yaml
from redis import Redis

from bench.common import REPO_ROOT, ChildProcess, format_table, machine_summary, wait_for_http
from bench.jobs.loadgen import run_wrk
from bench.jobs.seed import Shape, seed
from bench.jobs.servers import AUTH, READ_TOKEN
from bench.webhooks.load import run_load
from bench.webhooks.run import SECRET
from raibid_api.embedded import EmbeddedRedis, free_port
from raibid_api.storage.keys import Keys

START_TIMEOUT = 30.0
JOBS = 2_000
PATHS = 1_000
WARMUP_S = 2.0


@dataclass
class Target:
    """One server under load, and what each phase measured on it."""

    name: str
    port: int
    child: ChildProcess
    get: list[tuple[float, float]] = field(default_factory=list)
    hooks: list[tuple[float, float]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU time its process has used so far."""
        fields = Path(f"/proc/{self.child.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(name: str, redis_url: str, workdir: Path, metrics: dict[str, object] | None,
          pythonpath: Path | None = None) -> Target:  # fmt: skip
    """`python -m raibid_api serve` with the bench's config (``metrics`` None: no such section)."""
    port = free_port()
    config: dict[str, object] = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": redis_url},
        "auth": {"tokens": [{"name": "reader", "scopes": ["read"], "value": READ_TOKEN}]},
        "webhooks": {
            "gitea": {"secret": SECRET}, "github": {"secret": SECRET},
            "rate_limit_per_minute": 1_000_000_000,
            "spool_dir": str(workdir / f"{port}-spool"),
        },
        "dispatch": {"mode": "none"},
        "logging": {"level": "warning", "format": "json"},
    }  # fmt: skip
    if metrics is not None:
        config["metrics"] = metrics
    path = workdir / f"{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAIBID_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [sys.executable, "-m", "raibid_api", "serve", "--config", str(path)]
    child = ChildProcess(command, workdir / f"{port}.log", env=env).start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", START_TIMEOUT)
    except TimeoutError:
        tail = child.output_tail()
        child.stop()
        raise RuntimeError(f"{name} did not start:\n{tail}") from None
    return Target(name, port, child)


def unpack(ref: str, folder: Path) -> Path:
    """The files of ``ref`` of this repository (`git archive`), unpacked into ``folder``."""
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", ref], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def measure_get(target: Target, paths: list[str], seconds: float) -> None:
    """One closed-loop wrk run: (req/s, server CPU µs per request)."""
    cpu = target.cpu_seconds()
    sample = run_wrk(target.base_url, paths, AUTH, duration=seconds, connections=64)
    spent = target.cpu_seconds() - cpu
    if sample.failures:
        raise RuntimeError(f"{target.name}: {sample.failures} failed requests")
    target.get.append((sample.rate, 1e6 * spent / max(1, sample.requests)))


def measure_hooks(target: Target, seconds: float) -> None:
    """One closed-loop webhook run: (accepted/s, server CPU µs per delivery)."""
    cpu = target.cpu_seconds()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        load = runner.run(run_load(target.port, SECRET.encode(), connections=16, seconds=seconds))
    spent = target.cpu_seconds() - cpu
    answered = sum(load.statuses.values())
    if load.accepted != answered:
        raise RuntimeError(f"{target.name}: answers {dict(load.statuses)}")
    target.hooks.append((load.accepted / load.seconds, 1e6 * spent / max(1, answered)))


def table(targets: list[Target], pick: Callable[[Target], list[tuple[float, float]]]) -> str:
    """Medians of rate and CPU per answer, and each target's ratio to the first.

    The ratios are medians of each round's own ratio: the targets of one round ran one after
    the other, so the machine's drift between rounds cancels out of them.
    """
    first = pick(targets[0])
    rows = []
    for target in targets:
        rates = [r for r, _ in pick(target)]
        cpus = [c for _, c in pick(target)]
        pairs = list(zip(pick(target), first, strict=True))
        rate_ratio = statistics.median(r / b for (r, _), (b, _) in pairs)
        cpu_ratio = statistics.median(c / b for (_, c), (_, b) in pairs)
        rows.append([
            target.name, f"{statistics.median(rates):,.0f}", f"{rate_ratio:.1%}",
            f"{statistics.median(cpus):,.0f}", f"{cpu_ratio:.1%}",
            " / ".join(f"{c:,.0f}" for c in cpus),
        ])  # fmt: skip
    return format_table(
        ["target", "answers/s (median)", "rate vs first (median of rounds)",
         "server CPU µs/answer", "CPU vs first (median of rounds)", "CPU µs/answer per round"],
        rows,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run the rounds and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--before", default=None, metavar="REF",
        help="also run the tree of this git commit or branch (e.g. main) without metrics",
    )  # fmt: skip
    args = parser.parse_args(argv)
    print(machine_summary(), flush=True)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as redis:
        workdir = Path(tmp)
        client = Redis.from_url(redis.url, decode_responses=True)
        seeded = seed(client, Keys("raibid"), Shape(jobs=JOBS), time.time_ns() // 1_000_000)
        client.close()
        paths = [f"/jobs/{job_id}" for job_id in random.Random(3).sample(seeded.job_ids, PATHS)]
        targets = [
            start("metrics off", redis.url, workdir, {"enabled": False}),
            start("metrics on", redis.url, workdir, {"enabled": True}),
        ]
        try:
            if args.before is not None:
                tree = unpack(args.before, workdir / "before")
                targets.append(start(f"{args.before} (no metrics)", redis.url, workdir, None,
                                     tree / "src"))  # fmt: skip
            for target in targets:
                run_wrk(target.base_url, paths, AUTH, duration=WARMUP_S, connections=16)
            for number in range(args.rounds):
                order = targets if number % 2 == 0 else targets[::-1]
                for target in order:
                    measure_get(target, paths, args.seconds)
                for target in order:
                    measure_hooks(target, args.seconds)
                print(f"round {number + 1}/{args.rounds} done", flush=True)
        finally:
            for target in targets:
                target.child.stop()
    print(f"\nGET /jobs/{{id}}, wrk -t1 -c64, {args.rounds} rounds of {args.seconds:g} s")
    print(table(targets, lambda t: t.get))
    print(f"\nwebhook intake, 16 connections, {args.rounds} rounds of {args.seconds:g} s")
    print(table(targets, lambda t: t.hooks))


if __name__ == "__main__":
    main()
