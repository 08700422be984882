"""Live logs under many viewers: SSE clients in other processes while an agent writes lines.

    .venv/bin/python -m bench.logs.fanout --baseline /tmp/before-events/src
    # (make the baseline tree with: git archive main | tar -x -C /tmp/before-events)

Two scenarios, each run on the baseline tree's code and on this tree's, alternating, ``--rounds``
times (one server process each time, `raibid-api serve` with its embedded Redis):

- ``one-job``: 1,000 clients follow one job (``GET /jobs/{id}/logs``, SSE) while the agent posts
  1,000 lines/s to it for ``--seconds`` (50-line batches every 50 ms, one after the other);
- ``many-jobs``: 100 jobs, 10 clients each, the agent posting 10 lines a second to each (1,000
  lines/s in all). This tree's clients use ``GET /events?jobs=<id>``; the baseline has no
  `/events`, so its clients use the per-job stream, the nearest it has.

The clients are ``--client-procs`` processes of raw-socket clients (`bench.logs.clients`); this
process is the agent. Measured: lines the agent got written per second, its log POST latency,
every client's line count against what was written, line latency (posted → received, from
every 20th line, which carries its posting time), the server's peak RSS, the server's Redis
connections (peak of ``CLIENT LIST`` less this bench's own), and the server + Redis CPU (in all,
and per line delivered to a client). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from bench.agents.ingest import PAD, Held, claim_jobs
from bench.agents.server import WRITE_TOKEN, BenchServer, start_server
from bench.common import format_table, machine_summary, percentile

RATE = 1_000  # lines a second, over all jobs
STAMP_EVERY = 20  # every 20th line carries its posting time
DEADLINE_S = 120.0  # the latest the clients may finish after the agent stopped


@dataclass(frozen=True)
class Scenario:
    """How many jobs, clients per job, and lines per POST."""

    name: str
    jobs: int
    clients_per_job: int
    batch: int

    def path(self, job_id: str, *, events: bool) -> str:
        """What a client of ``job_id`` follows: `/events` for several jobs, where served."""
        return f"/events?jobs={job_id}" if events and self.jobs > 1 else f"/jobs/{job_id}/logs"


SCENARIOS = {
    "one-job": Scenario("one-job", 1, 1_000, 50),
    "many-jobs": Scenario("many-jobs", 100, 10, 10),
}


@dataclass
class Run:
    """The figures of one run."""

    lines_written: int = 0
    seconds: float = 0.0
    post_ms: list[float] = field(default_factory=list)
    client_lines: list[int] = field(default_factory=list)
    expected: list[int] = field(default_factory=list)
    ended: int = 0
    latency_ms: Counter[int] = field(default_factory=Counter)
    rss_mb: float = 0.0
    redis_connections: int = 0
    cpu_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> str:
        """How many clients got every line written for them."""
        whole = sum(got >= want for got, want in zip(self.client_lines, self.expected, strict=True))
        return f"{whole}/{len(self.expected)}"

    def latency(self, q: float) -> float:
        """The ``q``-th percentile of line latency, ms."""
        total = sum(self.latency_ms.values())
        if not total:
            return float("nan")
        rank = q / 100 * total
        seen = 0
        for ms in sorted(self.latency_ms):
            seen += self.latency_ms[ms]
            if seen >= rank:
                return float(ms)
        return float(max(self.latency_ms))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _sample(server: BenchServer, run: Run, stop: asyncio.Event) -> None:
    """Peak RSS of the server and its peak Redis connections, every 0.25 s until ``stop``."""
    client = aioredis.from_url(server.redis_url())
    try:
        while not stop.is_set():
            run.rss_mb = max(run.rss_mb, _rss_mb(server.pid))
            connections = len(await client.client_list()) - 1  # less this one
            run.redis_connections = max(run.redis_connections, connections)
            # pacing of a sampler, not synchronisation: it reads gauges at a fixed rate
            await asyncio.sleep(0.25)
    finally:
        await client.aclose()


async def _agent_job(
    http: httpx.AsyncClient, job: Held, scenario: Scenario, seconds: float, offset: float, run: Run
) -> int:
    """Post ``scenario.batch`` lines at a time to ``job`` on schedule; the lines written."""
    tick = scenario.batch * scenario.jobs / RATE
    steps = round(seconds / tick)
    headers = {"Authorization": f"Bearer {job.token}"}
    loop = asyncio.get_running_loop()
    start = loop.time() + offset
    written = 0
    for step in range(steps):
        delay = start + step * tick - loop.time()
        if delay > 0:
            # pacing to a schedule, not synchronisation: the agent emits lines at a fixed rate
            await asyncio.sleep(delay)
        if loop.time() - start > seconds:
            break  # behind schedule: the run's time is up
        lines = []
        for index in range(written, written + scenario.batch):
            stamp = f" T{time.time():.6f}" if index % STAMP_EVERY == 0 else ""
            lines.append(f"L{index:07d}{stamp} {PAD}")
        began = time.perf_counter()
        try:
            response = await http.post(
                f"/agent/jobs/{job.job_id}/logs", json={"lines": lines}, headers=headers
            )
        except httpx.HTTPError as exc:
            run.errors.append(f"log POST failed: {exc!r}")
            break
        run.post_ms.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            run.errors.append(f"log POST {response.status_code}: {response.text[:200]}")
            break
        written += scenario.batch
    return written


async def _clients(
    server: BenchServer, paths: list[str], procs: int, workdir: Path, per_proc: int
) -> list[tuple[asyncio.subprocess.Process, Path]]:
    port = server.base_url.rpartition(":")[2]
    started = []
    for index in range(procs):
        out = workdir / f"clients-{index}.json"
        mine = [paths[(index * per_proc + i) % len(paths)] for i in range(per_proc)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.logs.clients", "--port", port, "--token", WRITE_TOKEN,
            "--count", str(per_proc), "--out", str(out), "--deadline", str(DEADLINE_S * 5),
            *mine, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        started.append((process, out))
    for process, _ in started:
        assert process.stdout is not None  # noqa: S101  (a pipe was asked for)
        line = await asyncio.wait_for(process.stdout.readline(), DEADLINE_S)
        if line.strip() != b"READY":
            raise RuntimeError(f"a client process did not get ready: {line!r}")
    return started


async def one_run(
    tree: Path | None, scenario: Scenario, seconds: float, procs: int, workdir: Path
) -> Run:
    """One server on ``tree``'s code (None: this tree), its clients, and the agent."""
    run = Run()
    server = start_server(workdir, tree, logs={"max_lines": 2_000_000})
    try:
        jobs = await claim_jobs(server, scenario.jobs)
        paths = [scenario.path(job.job_id, events=tree is None) for job in jobs]
        clients = scenario.jobs * scenario.clients_per_job
        started = await _clients(server, paths, procs, workdir, clients // procs)
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample(server, run, stop))
        cpu_before = server.cpu_seconds()
        began = time.perf_counter()
        limits = httpx.Limits(max_connections=scenario.jobs)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
            written = await asyncio.gather(
                *(
                    _agent_job(http, job, scenario, seconds, i / scenario.jobs, run)
                    for i, job in enumerate(jobs)
                )
            )
            run.seconds = time.perf_counter() - began
            for job in jobs:
                try:
                    await http.post(
                        f"/agent/jobs/{job.job_id}/complete",
                        json={"status": "success", "exit_code": 0},
                        headers={"Authorization": f"Bearer {job.token}"},
                    )
                except httpx.HTTPError as exc:  # its clients then stop at their deadline
                    run.errors.append(f"complete failed: {exc!r}")
        for process, _ in started:
            await asyncio.wait_for(process.wait(), DEADLINE_S * 5)
        run.cpu_s = server.cpu_seconds() - cpu_before
        stop.set()
        await sampler
        run.lines_written = sum(written)
        for index, (_, out) in enumerate(started):
            result = json.loads(out.read_text())
            run.client_lines += result["lines"]
            per_proc = len(result["lines"])
            # every client gets the lines written to its job, and the server's claim note
            run.expected += [
                written[(index * per_proc + i) % len(jobs)] + 1 for i in range(per_proc)
            ]
            run.ended += result["ended"]
            run.errors += result["errors"]
            run.latency_ms.update({int(k): v for k, v in result["latency_ms"].items()})
    finally:
        server.stop()
    return run


def _row(label: str, run: Run) -> list[str]:
    return [
        label,
        f"{run.lines_written / run.seconds:.0f}",
        f"{percentile(run.post_ms, 50):.1f}",
        f"{percentile(run.post_ms, 99):.1f}",
        run.delivered,
        f"{run.latency(50):.0f}",
        f"{run.latency(99):.0f}",
        f"{run.rss_mb:.0f}",
        str(run.redis_connections),
        f"{run.cpu_s / run.seconds * 100:.0f}",
        f"{run.cpu_s / max(1, sum(run.client_lines)) * 1e6:.2f}",
    ]


HEADER = [
    "run", "lines/s written", "POST p50 ms", "POST p99 ms", "clients with every line",
    "line p50 ms", "line p99 ms", "peak RSS MB", "peak Redis conns", "server+Redis CPU %",
    "CPU µs per line delivered",
]  # fmt: skip


def _median_row(label: str, runs: Sequence[Run]) -> list[str]:
    rows = [_row(label, run) for run in runs]

    def median(column: int) -> str:
        return f"{statistics.median(float(row[column]) for row in rows):.0f}"

    return [label, *(median(c) for c in range(1, 4)), ", ".join(r[4] for r in rows),
            *(median(c) for c in range(5, 10)),
            f"{statistics.median(float(row[10]) for row in rows):.2f}"]  # fmt: skip


async def main(argv: Sequence[str]) -> None:
    """Run the scenarios on both trees, alternating, and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", type=Path, help="the src folder of the baseline tree")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    args = parser.parse_args(argv)
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.baseline:
        trees.insert(0, ("baseline", args.baseline.resolve()))
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    print(format_table(["fact", "value"], [list(i) for i in machine_summary().items()]))
    for name in names:
        scenario = SCENARIOS[name]
        runs: dict[str, list[Run]] = {label: [] for label, _ in trees}
        for round_ in range(args.rounds):
            for label, tree in trees if round_ % 2 == 0 else list(reversed(trees)):
                with tempfile.TemporaryDirectory(prefix="raibid-bench-logs-") as tmp:
                    run = await one_run(tree, scenario, args.seconds, args.client_procs, Path(tmp))
                runs[label].append(run)
                print(format_table(HEADER, [_row(f"{name} {label} #{round_ + 1}", run)]))
                if run.errors:
                    print("errors:", run.errors[:5])
        print(f"\n{name}: medians of {args.rounds} rounds")
        print(format_table(HEADER, [_median_row(label, runs[label]) for label, _ in trees]))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
