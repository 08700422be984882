"""What a held heartbeat costs the server: CPU per log line with and without one open.

    .venv/bin/python -m bench.agents.hold_cost            # 3 rounds of 200,000 lines each way

One claimed job's lines are POSTed as 1,000-line batches back to back on one connection, once
with no heartbeat open and once while the job's heartbeat is held (``wait: 5``, sent again as
soon as it is answered), alternating. While a heartbeat is held the server's shared stream reader
follows the job's event stream, so it reads every line back from Redis. The figure is the server
and its Redis's CPU seconds per 100,000 lines. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.agents.ingest import PAD, claim_jobs, complete_jobs
from bench.agents.server import BenchServer, start_server
from bench.common import format_table, machine_summary


async def _held_heartbeats(
    server: BenchServer, job_id: str, token: str, stop: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60.0) as http:
        while not stop.is_set():
            await http.post(f"/agent/jobs/{job_id}/heartbeat", json={"wait": 5}, headers=headers)


async def one_run(server: BenchServer, lines: int, *, held: bool) -> float:
    """Server + Redis CPU seconds per 100,000 lines of one job, with or without a held beat."""
    [job] = await claim_jobs(server, 1)
    stop = asyncio.Event()
    beating = (
        asyncio.create_task(_held_heartbeats(server, job.job_id, job.token, stop)) if held else None
    )
    headers = {"Authorization": f"Bearer {job.token}"}
    sent = [f"line {index:07d} {PAD}" for index in range(lines)]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as http:
        await asyncio.sleep(0.5)  # the heartbeat is held before the first line
        cpu = server.cpu_seconds()
        for offset in range(0, lines, 1000):
            body = {"offset": offset, "lines": sent[offset : offset + 1000]}
            answer = await http.post(f"/agent/jobs/{job.job_id}/logs", json=body, headers=headers)
            answer.raise_for_status()
        cpu = server.cpu_seconds() - cpu
    stop.set()
    await complete_jobs(server, [job])
    if beating is not None:
        await beating
    return cpu / lines * 100_000


async def _measure(rounds: int, lines: int) -> list[list[object]]:
    with tempfile.TemporaryDirectory(prefix="raibid-bench-hold-") as folder:
        server = start_server(Path(folder))
        try:
            without, with_hold = [], []
            for _ in range(rounds):
                without.append(await one_run(server, lines, held=False))
                with_hold.append(await one_run(server, lines, held=True))
        finally:
            server.stop()
    return [
        [name, *(f"{v:.2f}" for v in values), f"{statistics.median(values):.2f}"]
        for name, values in (("no heartbeat held", without), ("heartbeat held", with_hold))
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.agents.hold_cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lines", type=int, default=200_000)
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    rows = asyncio.run(_measure(options.rounds, options.lines))
    rounds = [f"round {i + 1}" for i in range(options.rounds)]
    print("server + Redis CPU seconds per 100,000 log lines")
    print(format_table(["", *rounds, "median"], rows))
    for name, value in machine_summary().items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
