"""Run the webhook intake benchmark: raibid-api and the bare baseline, side by side, then the spool.

    .venv/bin/python -m bench.webhooks.run [--seconds 8] [--connections 16] [--rounds 3]
        [--rate 200] [--rate-seconds 5] [--log-level info] [--no-spool]

Both servers run on this machine against one redis-server (append-only file on, as in
production), on uvicorn with uvloop and httptools, one worker each; the load generator runs in
this process. Each round has two phases, each alternating baseline and raibid-api so that drift
in the machine's load hits both alike:

- throughput: a closed loop of ``--connections`` connections for ``--seconds`` each, so the
  server runs saturated; its p99 is mostly queueing at that saturation;
- latency: an open loop at a constant ``--rate`` deliveries a second for ``--rate-seconds`` each
  (after half a second of quiet), over up to 64 keep-alive connections, latency counted from each
  delivery's scheduled time (see `bench.webhooks.load.run_rate`); ``--rate 0`` skips it. Its
  table gives the accepted rate, p50, p99 and max latency, the deliveries that found no idle
  connection (late), the most connections open, and the generator's own lag behind the schedule
  (a floor under the latencies, from this machine's timers and scheduler), then the p99 ratio.

The tables give medians over rounds. Then Redis is stopped, deliveries are sent (raibid-api
spools them to disk), Redis is started again, and the replay is timed (``--no-spool`` skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import uvloop
import yaml
from redis import Redis

from bench.common import ChildProcess, format_table, machine_summary, percentile, wait_for_http
from bench.webhooks.load import LoadResult, RateResult, fixture_sizes, run_load, run_rate
from raibid_api.embedded import EmbeddedRedis, free_port

SECRET = "bench-webhook-secret-0123456789"  # noqa: S105  (a throwaway secret of the bench)
PREFIX = "bench"
START_TIMEOUT = 30.0
UVICORN = ["--loop", "uvloop", "--http", "httptools", "--workers", "1"]
RATE_CONNECTIONS = 64
SETTLE_S = 0.5  # quiet before each constant-rate run, after the saturated ones


@dataclass
class Server:
    """One HTTP server under load."""

    name: str
    port: int
    child: ChildProcess


def start_raibid(
    redis_url: str, workdir: Path, level: str, *, name: str = "raibid-api", prefix: str = PREFIX,
    extra: dict[str, dict[str, object]] | None = None,
) -> Server:  # fmt: skip
    """`python -m raibid_api serve`: signed forges, limits far above the load, a spool.

    ``extra`` adds sections, or keys of a section (``dispatch: none`` otherwise);
    ``name`` names the server, its files under ``workdir`` and nothing else.
    """
    port = free_port()
    config: dict[str, dict[str, object]] = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": redis_url, "key_prefix": prefix},
        "webhooks": {
            "gitea": {"secret": SECRET},
            "github": {"secret": SECRET},
            "rate_limit_per_minute": 1_000_000_000,
            "spool_dir": str(workdir / f"{name}-spool"),
        },
        "dispatch": {"mode": "none"},
        "logging": {"level": level, "format": "json"},
    }
    for section, keys in (extra or {}).items():
        config[section] = config.get(section, {}) | keys
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "raibid_api", "serve", "--config", str(path)]
    child = ChildProcess(command, workdir / f"{name}.log").start()
    _wait(child, f"http://127.0.0.1:{port}/ready")
    return Server(name, port, child)


def start_baseline(redis_url: str, workdir: Path) -> Server:
    """`bench.webhooks.baseline` on the same ASGI server, loop and parser."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.webhooks.baseline:app",
               "--host", "127.0.0.1", "--port", str(port), *UVICORN,
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    env = {"BENCH_REDIS_URL": redis_url, "BENCH_SECRET": SECRET, "PATH": "/usr/bin:/bin"}
    child = ChildProcess(command, workdir / "baseline.log", env=env).start()
    _wait(child, f"http://127.0.0.1:{port}/health")
    return Server("baseline", port, child)


def _wait(child: ChildProcess, url: str) -> None:
    try:
        wait_for_http(url, START_TIMEOUT)
    except TimeoutError:
        tail = child.output_tail()
        child.stop()
        raise RuntimeError(f"{child.command} did not start:\n{tail}") from None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    """One load run against one server, and the CPU its process spent on it."""

    load: LoadResult
    cpu_s: float

    @property
    def cpu_ms_per_delivery(self) -> float:
        """Server CPU per answered delivery."""
        return 1000 * self.cpu_s / max(1, sum(self.load.statuses.values()))


def _row(name: str, rounds: list[Round]) -> list[object]:
    rates = [r.load.accepted / r.load.seconds for r in rounds]
    p50 = statistics.median(percentile(r.load.latencies_ms, 50) for r in rounds)
    p99 = statistics.median(percentile(r.load.latencies_ms, 99) for r in rounds)
    cpu_ms = statistics.median(r.cpu_ms_per_delivery for r in rounds)
    other = sum(sum(n for s, n in r.load.statuses.items() if s != 202) for r in rounds)
    per_round = " / ".join(f"{rate:.0f}" for rate in rates)
    return [name, f"{statistics.median(rates):.0f}", f"{p50:.1f}", f"{p99:.1f}",
            f"{cpu_ms:.3f}", f"{1000 / cpu_ms:.0f}", per_round, other]  # fmt: skip


def _rate_row(name: str, results: list[RateResult]) -> list[object]:
    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.1f}"

    rates = [r.accepted / r.seconds for r in results]
    p99s = [percentile(r.latencies_ms, 99) for r in results]
    other = sum(sum(n for s, n in r.statuses.items() if s != 202) for r in results)
    return [name, f"{statistics.median(rates):.0f}",
            median([percentile(r.latencies_ms, 50) for r in results]), median(p99s),
            median([max(r.latencies_ms, default=math.nan) for r in results]),
            " / ".join(f"{p:.1f}" for p in p99s), sum(r.late for r in results),
            max(r.peak_connections for r in results),
            median([percentile(r.send_lag_ms, 99) for r in results]), other]  # fmt: skip


@dataclass
class Results:
    """Each server's rounds of both phases, by server name."""

    throughput: dict[str, list[Round]]
    latency: dict[str, list[RateResult]]


async def compare(servers: list[Server], args: argparse.Namespace) -> Results:
    """Warm each server up, then run ``args.rounds`` rounds of both phases.

    Args:
        servers: The servers to compare, in the order each phase runs them in every round.
        args: The command line: connections, seconds, rate, rate_seconds, rounds.

    Returns:
        The closed-loop rounds (with each server's CPU time) and the constant-rate ones; the
        latter empty when ``args.rate`` is 0.
    """
    secret = SECRET.encode()
    for server in servers:
        await run_load(server.port, secret, connections=args.connections, seconds=2)
    results = Results({s.name: [] for s in servers}, {s.name: [] for s in servers})
    for _ in range(args.rounds):
        for server in servers:
            before = cpu_seconds(server.child.pid)
            load = await run_load(
                server.port, secret, connections=args.connections, seconds=args.seconds
            )
            used = cpu_seconds(server.child.pid) - before
            results.throughput[server.name].append(Round(load, used))
        if args.rate <= 0:
            continue
        for server in servers:
            await asyncio.sleep(SETTLE_S)
            rated = await run_rate(
                server.port, secret, rate=args.rate, seconds=args.rate_seconds,
                max_connections=RATE_CONNECTIONS,
            )  # fmt: skip
            results.latency[server.name].append(rated)
    return results


def _job_count(redis: Redis) -> int:
    return int(redis.zcard(f"{PREFIX}:index:all"))


async def measure_spool(
    server: Server, redis_server: EmbeddedRedis, workdir: Path, count: int
) -> list[object]:
    """Spool ``count`` deliveries with Redis stopped, restart it, time the replay."""
    client = Redis.from_url(redis_server.url)
    before = _job_count(client)
    redis_server.stop()
    spool = workdir / f"{server.name}-spool"
    load = await run_load(server.port, SECRET.encode(), connections=8, seconds=3)
    spooled = len(list(spool.glob("*.json")))
    redis_server.start()
    started = time.perf_counter()
    while list(spool.glob("*.json")):  # noqa: ASYNC110  (files on disk: nothing to await)
        await asyncio.sleep(0.05)
    replay_s = time.perf_counter() - started
    made = _job_count(client) - before
    client.close()
    return [load.accepted, f"{load.accepted / load.seconds:.0f}",
            f"{percentile(load.latencies_ms, 50):.1f}", f"{percentile(load.latencies_ms, 99):.1f}",
            spooled, f"{replay_s:.2f}", made]  # fmt: skip


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0, help="deliveries/s; 0: no phase")
    parser.add_argument("--rate-seconds", type=float, default=5.0)
    parser.add_argument("--log-level", default="info", choices=["info", "warning"])
    parser.add_argument("--no-spool", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    redis_server = EmbeddedRedis(workdir / "redis", appendonly=True).start()
    servers: list[Server] = []
    try:
        # one at a time, so that the baseline is stopped even if raibid-api fails to start
        servers.append(start_baseline(redis_server.url, workdir))
        servers.append(start_raibid(redis_server.url, workdir, args.log_level))
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(compare(servers, args))
            rows = [_row(name, found) for name, found in results.throughput.items()]
            rate_rows = [_rate_row(name, found) for name, found in results.latency.items() if found]
            spool_row = None
            if not args.no_spool:
                spool_row = runner.run(measure_spool(servers[1], redis_server, workdir, 500))
        _report(args, rows, rate_rows, spool_row)
    finally:
        for server in servers:
            server.child.stop()
        redis_server.stop()


def _report(
    args: argparse.Namespace,
    rows: list[list[object]],
    rate_rows: list[list[object]],
    spool: list[object] | None,
) -> None:
    baseline, raibid = (float(str(rows[i][1])) for i in (0, 1))
    baseline_cpu, raibid_cpu = (float(str(rows[i][5])) for i in (0, 1))
    print("machine:", ", ".join(f"{k}: {v}" for k, v in machine_summary().items()))
    print("payloads:", ", ".join(f"{k} {v} B" for k, v in fixture_sizes().items()))
    print(f"connections {args.connections}, {args.rounds} rounds of {args.seconds:g} s each, "
          f"raibid-api log level {args.log_level}\n")  # fmt: skip
    headers = ["server", "accepted/s (median)", "p50 ms", "p99 ms", "server CPU ms/delivery",
               "deliveries per CPU-s", "accepted/s per round", "non-202"]  # fmt: skip
    print(format_table(headers, rows))
    print(f"\nraibid-api / baseline: {raibid / baseline:.0%} of the accepted deliveries/s, "
          f"{raibid_cpu / baseline_cpu:.0%} of the deliveries per CPU-second")  # fmt: skip
    if rate_rows:
        _report_rate(args, rate_rows)
    if spool is not None:
        print()
        print(format_table(["spooled (202)", "spooled/s", "p50 ms", "p99 ms", "files",
                            "replay s", "jobs made"], [spool]))  # fmt: skip


def _report_rate(args: argparse.Namespace, rows: list[list[object]]) -> None:
    print(f"\nconstant rate: {args.rate:g} deliveries/s for {args.rate_seconds:g} s per round, "
          f"up to {RATE_CONNECTIONS} connections, latency from each scheduled send\n")  # fmt: skip
    headers = ["server", "accepted/s (median)", "p50 ms", "p99 ms", "max ms", "p99 ms per round",
               "late", "most connections", "generator lag p99 ms", "non-202"]  # fmt: skip
    print(format_table(headers, rows))
    baseline, raibid = (float(str(rows[i][3])) for i in (0, 1))
    print(f"\nraibid-api / baseline at {args.rate:g}/s: p99 {raibid:.1f} ms / {baseline:.1f} ms "
          f"= {raibid / baseline:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
