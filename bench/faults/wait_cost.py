"""What waiting for a replica costs the webhook intake: ``redis.min_replica_acks`` 1 against 0.

    .venv/bin/python -m bench.faults.wait_cost [--seconds 6] [--connections 16] [--rounds 3]
        [--rate 100] [--rate-seconds 5]

One redis-server primary (append-only file on, as in production) with one replica on this
machine; two raibid-api servers on that primary, each under its own key prefix: ``wait-off``
(``min_replica_acks: 0``, no ``WAIT``) and ``wait-1`` (``min_replica_acks: 1``: a webhook's job is
acknowledged once the replica has it). The phases and tables are `bench.webhooks.run`'s: a
saturated closed loop (deliveries/s) and a constant rate (p99 latency), each round alternating
the two servers so that drift in the machine's load hits both alike; medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from redis import Redis

from bench.common import ChildProcess, format_table, machine_summary
from bench.webhooks.run import Server, _rate_row, _row, compare, start_raibid
from raibid_api.embedded import find_redis_binary, free_port

START_TIMEOUT = 30.0


def start_redis(workdir: Path, name: str, *extra: str) -> tuple[ChildProcess, int]:
    """A redis-server on a free port with its data in ``workdir/name``."""
    folder = workdir / name
    folder.mkdir(parents=True)
    port = free_port()
    command = [str(find_redis_binary()), "--port", str(port), "--bind", "127.0.0.1",
               "--dir", str(folder), "--appendonly", "yes", "--appendfsync", "everysec",
               "--save", "", "--repl-diskless-sync-delay", "0", *extra]  # fmt: skip
    child = ChildProcess(command, workdir / f"{name}.log").start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with Redis(port=port, socket_timeout=1.0) as client:
                client.ping()
            return child, port
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{child.output_tail()}") from None
            time.sleep(0.05)


def wait_for_replica(port: int) -> None:
    """Until the primary on ``port`` has one replica online."""
    deadline = time.monotonic() + START_TIMEOUT
    with Redis(port=port, decode_responses=True) as client:
        while int(client.info("replication").get("connected_slaves", 0)) < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not connect")
            time.sleep(0.05)


def main() -> None:
    """Run the comparison and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0, help="deliveries/s; 0: no phase")
    parser.add_argument("--rate-seconds", type=float, default=5.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-wait-"))
    children: list[ChildProcess] = []
    servers: list[Server] = []
    try:
        primary, port = start_redis(workdir, "primary")
        children.append(primary)
        replica, _ = start_redis(workdir, "replica", "--replicaof", "127.0.0.1", str(port))
        children.append(replica)
        wait_for_replica(port)
        url = f"redis://127.0.0.1:{port}/0"
        for name, acks in (("wait-off", 0), ("wait-1", 1)):
            extra: dict[str, dict[str, object]] = {
                "redis": {"url": url, "key_prefix": name, "min_replica_acks": acks}
            }
            servers.append(start_raibid(url, workdir, "warning", name=name, extra=extra))
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(compare(servers, args))
        _report(args, [_row(n, r) for n, r in results.throughput.items()],
                [_rate_row(n, r) for n, r in results.latency.items() if r])  # fmt: skip
        # a delivery no replica acknowledged in time is spooled (and logged): none should be
        for server in servers:
            log = (workdir / f"{server.name}.log").read_text(errors="replace")
            sys.stdout.write(f"{server.name}: {log.count('spooling the webhook delivery')} "
                             "deliveries spooled\n")  # fmt: skip
    finally:
        for server in servers:
            server.child.stop()
        for child in children:
            child.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _report(args: argparse.Namespace, rows: list[list[object]], rate: list[list[object]]) -> None:
    out = sys.stdout
    out.write("machine: " + ", ".join(f"{k}: {v}" for k, v in machine_summary().items()) + "\n")
    out.write(f"connections {args.connections}, {args.rounds} rounds of {args.seconds:g} s\n\n")
    headers = ["server", "accepted/s (median)", "p50 ms", "p99 ms", "server CPU ms/delivery",
               "deliveries per CPU-s", "accepted/s per round", "non-202"]  # fmt: skip
    out.write(format_table(headers, rows) + "\n")
    off, on = (float(str(rows[i][1])) for i in (0, 1))
    out.write(f"\nwait-1 / wait-off: {on / off:.0%} of the accepted deliveries/s\n")
    if rate:
        out.write(f"\nconstant rate: {args.rate:g} deliveries/s for {args.rate_seconds:g} s\n\n")
        headers = ["server", "accepted/s (median)", "p50 ms", "p99 ms", "max ms",
                   "p99 ms per round", "late", "most connections", "generator lag p99 ms",
                   "non-202"]  # fmt: skip
        out.write(format_table(headers, rate) + "\n")
        p99_off, p99_on = (float(str(rate[i][3])) for i in (0, 1))
        out.write(f"\nwait-1 / wait-off p99 at {args.rate:g}/s: {p99_on:.1f} ms / "
                  f"{p99_off:.1f} ms = {p99_on / p99_off:.2f}x\n")  # fmt: skip


if __name__ == "__main__":
    main()
