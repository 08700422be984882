"""The jobs API benchmark: raibid-api and the bare baseline side by side, in alternating rounds.

    .venv/bin/python -m bench.jobs.run                 # everything, 5 rounds of 10 s
    .venv/bin/python -m bench.jobs.run --rounds 3 --duration 5 --phases get,get-rate

Phases: ``get`` (GET /jobs/{id}, closed loop with wrk), ``get-rate`` (GET /jobs/{id} at a constant
rate), ``list`` (GET /jobs?status=..&repo=.. over the seeded history, constant rate and closed
loop), ``startup`` (`make run` to the first 200). Every phase runs its targets in alternating
rounds (order reversed every other round, so drift on a shared machine hits both alike) and reports
medians over the rounds. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import uvloop
from redis import Redis

from bench.common import format_table, machine_summary
from bench.jobs.loadgen import Sample, run_constant_rate, run_wrk
from bench.jobs.seed import Seeded, Shape, seed
from bench.jobs.servers import AUTH, Target, start_baseline, start_server
from bench.jobs.startup import DEFAULT_VENV, measure_startup
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage.keys import Keys

PHASES = ("get", "get-rate", "list", "startup")
LIST_STATUS_MIX = {"success": 0.4, "failed": 0.4, "running": 0.1, "pending": 0.1}
PATH_SAMPLES = 1000
WARMUP_S = 2.0


@dataclass(frozen=True)
class Options:
    """What to run and for how long."""

    duration: float
    rounds: int
    rate: float
    list_rate: float
    jobs: int
    connections: int
    list_connections: int
    phases: tuple[str, ...]
    info: bool
    startup_runs: int
    venv: Path
    json_out: Path | None


@dataclass
class Series:
    """The rounds of one target in one measurement."""

    target: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, pick: Callable[[Sample], float]) -> float:
        """The median over the rounds of one figure."""
        return statistics.median(pick(s) for s in self.samples)


@dataclass
class Measurement:
    """One named measurement: every target's rounds."""

    title: str
    kind: str  # "closed" (wrk, as fast as it goes) or "rate" (constant rate)
    series: list[Series]


def alternate(
    targets: Sequence[Target], rounds: int, measure: Callable[[Target], Sample]
) -> list[Series]:
    """Measure every target once per round; every other round in reverse order."""
    series = {t.name: Series(t.name) for t in targets}
    for round_no in range(rounds):
        order = targets if round_no % 2 == 0 else list(reversed(targets))
        for target in order:
            sample = _with_cpu(target, measure)
            series[target.name].samples.append(sample)
            print(f"  round {round_no + 1}/{rounds} {target.name:<20} {_brief(sample)}", flush=True)
    return list(series.values())


def _with_cpu(target: Target, measure: Callable[[Target], Sample]) -> Sample:
    """Measure, and note the target's CPU time per answered request (robust to a busy machine)."""
    before = target.cpu_seconds()
    sample = measure(target)
    used = target.cpu_seconds() - before
    sample.extra["cpu_us_per_request"] = used / max(sample.requests, 1) * 1e6
    return sample


def _brief(sample: Sample) -> str:
    return (
        f"{sample.rate:8.0f} req/s  p50 {sample.p50_ms:6.2f} ms  p99 {sample.p99_ms:6.2f} ms"
        f"  max {sample.max_ms:7.2f} ms  cpu/req {sample.extra['cpu_us_per_request']:5.0f} us"
        f"  failures {sample.failures}"
    )


def closed_loop(
    paths: Sequence[str], duration: float, connections: int
) -> Callable[[Target], Sample]:
    """A wrk run against a target."""
    return lambda t: run_wrk(t.base_url, paths, AUTH, duration=duration, connections=connections)


def constant_rate(
    paths: Sequence[str], rate: float, duration: float, connections: int = 16
) -> Callable[[Target], Sample]:
    """A constant-rate run against a target."""

    def measure(target: Target) -> Sample:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(
                run_constant_rate(
                    ("127.0.0.1", target.port), paths, AUTH, rate=rate, duration=duration,
                    connections=connections,
                )
            )  # fmt: skip

    return measure


def get_paths(seeded: Seeded, rng: random.Random) -> list[str]:
    """GET /jobs/{id} over a random sample of the stored jobs."""
    return [f"/jobs/{job_id}" for job_id in rng.sample(seeded.job_ids, PATH_SAMPLES)]


def list_paths(seeded: Seeded, rng: random.Random) -> list[str]:
    """GET /jobs?status=..&repo=..: statuses people filter on, repos as busy as they are."""
    repos = seeded.shape.repo_names()
    statuses = rng.choices(list(LIST_STATUS_MIX), list(LIST_STATUS_MIX.values()), k=PATH_SAMPLES)
    chosen = rng.choices(repos, seeded.shape.repo_weights(), k=PATH_SAMPLES)
    return [
        "/jobs?" + urlencode({"status": s, "repo": r})
        for s, r in zip(statuses, chosen, strict=True)
    ]


def worst_list_path(seeded: Seeded) -> str:
    """The listing that intersects the largest sets: the busiest repo's successful jobs."""
    status, repo = max(seeded.by_status_repo, key=lambda k: seeded.by_status_repo[k])
    return "/jobs?" + urlencode({"status": status, "repo": repo})


def check_answers(targets: Sequence[Target], seeded: Seeded) -> None:
    """Every target finds a stored job and counts a listing right before anything is timed."""
    job_id = seeded.job_ids[0]
    (status, repo), count = seeded.by_status_repo.most_common(1)[0]
    query = {"status": status, "repo": repo}
    with httpx.Client(headers=AUTH, timeout=5.0) as client:
        for target in targets:
            job = client.get(f"{target.base_url}/jobs/{job_id}").raise_for_status().json()
            page = client.get(f"{target.base_url}/jobs", params=query).raise_for_status().json()
            if job["id"] != job_id or page["total"] != count or len(page["jobs"]) != 50:
                raise RuntimeError(f"{target.name} answered wrongly: {job}, total {page['total']}")


def warm_up(targets: Sequence[Target], paths: Sequence[str]) -> None:
    """A short unrecorded run per target: connection pools filled, scripts loaded, code warm."""
    for target in targets:
        run_wrk(target.base_url, paths, AUTH, duration=WARMUP_S, connections=16)


def _cpu(sample: Sample) -> float:
    return sample.extra["cpu_us_per_request"]


def _ratios(series: Series, baseline: Series | None, kind: str) -> tuple[str, str]:
    if baseline is None or series is baseline:
        return "", ""
    cpu = f"{baseline.median(_cpu) / series.median(_cpu):.0%}"
    if kind != "closed":
        return "", cpu
    return f"{series.median(lambda s: s.rate) / baseline.median(lambda s: s.rate):.0%}", cpu


def table(measurement: Measurement) -> str:
    """The medians of every target of one measurement, with the spread over rounds."""
    baseline = next((s for s in measurement.series if s.target == "baseline"), None)
    rows = []
    for series in measurement.series:
        rates = [s.rate for s in series.samples]
        p99s = [s.p99_ms for s in series.samples]
        rows.append([
            series.target,
            f"{series.median(lambda s: s.rate):,.0f}",
            f"{min(rates):,.0f}-{max(rates):,.0f}",
            f"{series.median(lambda s: s.p50_ms):.2f}",
            f"{series.median(lambda s: s.p99_ms):.2f}",
            f"{min(p99s):.2f}-{max(p99s):.2f}",
            f"{series.median(_cpu):.0f}",
            str(sum(s.failures for s in series.samples)),
            *_ratios(series, baseline, measurement.kind),
        ])  # fmt: skip
    headers = ["target", "req/s", "req/s range", "p50 ms", "p99 ms", "p99 range ms",
               "CPU us/req", "failures", "req/s vs baseline", "CPU/req vs baseline"]  # fmt: skip
    return f"### {measurement.title}\n\n{format_table(headers, rows)}"


def dataset_report(seeded: Seeded, seconds: float) -> str:
    """How the stored history is distributed, and how long it took to write."""
    total = seeded.shape.jobs

    def share(counter: dict[str, int]) -> str:
        return ", ".join(
            f"{k} {v / total:.1%}" for k, v in sorted(counter.items(), key=lambda x: -x[1])
        )

    top = seeded.by_repo.most_common()
    return "\n".join([
        f"{total:,} jobs written in {seconds:.1f} s (pipelined HSET/ZADD/XADD, storage layout)",
        f"  status: {share(seeded.by_status)}",
        f"  event:  {share(seeded.by_event)}",
        f"  repos:  {len(top)}, Zipf 1/k: busiest {top[0][0]} {top[0][1]:,} jobs, "
        f"quietest {top[-1][0]} {top[-1][1]:,}",
        f"  worst listing {worst_list_path(seeded)}: "
        f"{max(seeded.by_status_repo.values()):,} matches",
    ])  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> Options:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.jobs.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per target")
    parser.add_argument("--rate", type=float, default=1000.0, help="GET /jobs/{id} constant rate")
    parser.add_argument("--list-rate", type=float, default=50.0, help="GET /jobs constant rate")
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs stored")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections, GET by id")
    parser.add_argument("--list-connections", type=int, default=16, help="wrk connections, list")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"subset of {PHASES}")
    parser.add_argument("--no-info", action="store_true", help="skip the server at log level info")
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv for startup")
    parser.add_argument("--json", type=Path, default=None, help="also write every sample here")
    args = parser.parse_args(argv)
    phases = tuple(p for p in args.phases.split(",") if p)
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    return Options(
        args.duration, args.rounds, args.rate, args.list_rate, args.jobs, args.connections,
        args.list_connections, phases, not args.no_info, args.startup_runs, args.venv, args.json,
    )  # fmt: skip


def http_phases(options: Options, workdir: Path) -> list[Measurement]:
    """Start Redis, seed it, start the targets, run the HTTP phases, stop everything."""
    with EmbeddedRedis(workdir / "redis") as redis_server:
        client = Redis.from_url(redis_server.url, decode_responses=True)
        started = time.perf_counter()
        seeded = seed(client, Keys("raibid"), Shape(jobs=options.jobs), time.time_ns() // 10**6)
        print(dataset_report(seeded, time.perf_counter() - started), flush=True)
        client.close()
        rng = random.Random(11)
        paths = get_paths(seeded, rng)
        targets = [start_baseline("baseline", redis_server.url, workdir, paths[0])]
        try:
            targets.append(start_server("raibid-api", redis_server.url, workdir, "warning"))
            if options.info:
                targets.append(start_server("raibid-api (log info)", redis_server.url, workdir,
                                            "info"))  # fmt: skip
            check_answers(targets, seeded)
            warm_up(targets, paths)
            return _measure(options, targets, seeded, paths, rng)
        finally:
            for target in targets:
                target.stop()


def _measure(
    options: Options, targets: list[Target], seeded: Seeded, paths: list[str], rng: random.Random
) -> list[Measurement]:
    found: list[Measurement] = []
    d, rounds = options.duration, options.rounds
    worst = worst_list_path(seeded)
    mix = list_paths(seeded, rng)
    wrk_get = f"closed loop (wrk -t1 -c{options.connections})"
    wrk_list = f"closed loop (wrk -t1 -c{options.list_connections})"
    at_list = f"at {options.list_rate:.0f} req/s (constant rate)"
    plan: list[tuple[str, str, str, Sequence[Target], Callable[[Target], Sample]]] = [
        (
            "get",
            f"GET /jobs/{{id}}, {wrk_get}",
            "closed",
            targets,
            closed_loop(paths, d, options.connections),
        ),
        (
            "get-rate",
            f"GET /jobs/{{id}} at {options.rate:.0f} req/s (constant rate)",
            "rate",
            targets,
            constant_rate(paths, options.rate, d),
        ),
        (
            "list",
            f"GET /jobs?status&repo (mix) {at_list}",
            "rate",
            targets[:2],
            constant_rate(mix, options.list_rate, d),
        ),
        (
            "list",
            f"GET {worst} (busiest) {at_list}",
            "rate",
            targets[:2],
            constant_rate([worst], options.list_rate, d),
        ),
        (
            "list",
            f"GET {worst} (busiest), alone: 5 req/s on 1 connection",
            "rate",
            targets[:2],
            constant_rate([worst], 5.0, d, connections=1),
        ),
        (
            "list",
            f"GET /jobs?status&repo (mix), {wrk_list}",
            "closed",
            targets[:2],
            closed_loop(mix, d, options.list_connections),
        ),
    ]
    for phase, title, kind, chosen, measure in plan:
        if phase not in options.phases:
            continue
        print(f"\n{title}", flush=True)
        found.append(Measurement(title, kind, alternate(chosen, rounds, measure)))
        print("\n" + table(found[-1]), flush=True)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen phases and print their tables."""
    options = parse_args(argv)
    machine = machine_summary()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    measurements: list[Measurement] = []
    if set(options.phases) - {"startup"}:
        with tempfile.TemporaryDirectory(prefix="raibid-bench-") as workdir:
            measurements = http_phases(options, Path(workdir))
    startup = None
    if "startup" in options.phases:
        print("\nmake run -> first 200 from GET /jobs", flush=True)
        startup = measure_startup(options.startup_runs, options.venv)
        install = f"{startup.install_seconds:.1f} s" if startup.install_seconds else "(was done)"
        runs = ", ".join(f"{s:.2f}" for s in startup.seconds)
        cpu = statistics.median(startup.cpu_seconds)
        print(
            f"  install: {install}; runs: {runs} s; median {startup.median:.2f} s "
            f"(CPU used by make + server + redis until then: median {cpu:.2f} s)",
            flush=True,
        )
    print("\nmachine at the end: load average " + machine_summary()["load average (1/5/15 min)"])
    print("\n\n".join(table(m) for m in measurements))
    if options.json_out is not None:
        options.json_out.write_text(json.dumps({
            "machine": machine,
            "measurements": [asdict(m) for m in measurements],
            "startup": asdict(startup) if startup else None,
        }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
