"""The agents benchmark: claim-to-running latency and log ingestion against a real server process.

    .venv/bin/python -m bench.agents.run                  # 3 rounds of everything
    .venv/bin/python -m bench.agents.run --rounds 1 --phases latency

Phases: ``latency`` (an idle agent long-polls; a job is triggered; how soon the claim answers),
``single`` (one agent's LogShipper sending as fast as it can), ``raw`` (batches of 1,000 lines
POSTed back to back on one connection), ``fleet`` (20 agents x 1,000 lines/s each for 10 s). Every
job's log is read back and compared with what was sent. Each phase runs ``--rounds`` times; the
table shows every round and the median of the rounds. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.agents.ingest import FleetRun, SingleRun, fleet, raw_batches, single_agent
from bench.agents.latency import LatencyRun, measure_claim_latency
from bench.agents.server import BenchServer, start_server
from bench.common import format_table, machine_summary, percentile

PHASES = ("latency", "single", "raw", "fleet")
LATENCY_TARGET_MS = 50.0
SINGLE_TARGET = 20_000.0


def _options(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.agents.run", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--latency-jobs", type=int, default=500)
    parser.add_argument("--single-lines", type=int, default=200_000)
    parser.add_argument("--fleet-agents", type=int, default=20)
    parser.add_argument("--fleet-rate", type=int, default=1_000, help="lines/s of each agent")
    parser.add_argument("--fleet-seconds", type=float, default=10.0)
    options = parser.parse_args(argv)
    unknown = set(options.phases.split(",")) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    return options


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _latency_rows(runs: list[LatencyRun]) -> list[list[object]]:
    def row(name: str, pick: Callable[[LatencyRun], list[float]], q: float) -> list[object]:
        per_round = [percentile(pick(run), q) for run in runs]
        return [name, *(f"{v:.2f}" for v in per_round), f"{_median(per_round):.2f}"]

    def answered(run: LatencyRun) -> list[float]:
        return run.after_answer_ms

    def sent(run: LatencyRun) -> list[float]:
        return run.after_send_ms

    first = [str(run.claim_first) for run in runs]
    return [
        row("claim after trigger answered, p50 (ms)", answered, 50),
        row("claim after trigger answered, p99 (ms)", answered, 99),
        row("claim after trigger answered, max (ms)", answered, 100),
        row("claim after trigger sent, p50 (ms)", sent, 50),
        row("claim after trigger sent, p99 (ms)", sent, 99),
        ["claims answered before the trigger", *first, "-"],
    ]


def _cpu_row(name: str, runs: Sequence[SingleRun | FleetRun]) -> list[object]:
    per_100k = [run.server_cpu_s / run.lines * 100_000 for run in runs]
    return [f"{name}: server + Redis CPU s per 100k lines", *(f"{v:.2f}" for v in per_100k),
            f"{_median(per_100k):.2f}"]  # fmt: skip


def _single_rows(name: str, runs: list[SingleRun]) -> list[list[object]]:
    rates = [run.rate for run in runs]
    perfect = ["yes" if run.check.perfect else f"NO {run.check}" for run in runs]
    return [
        [f"{name}: lines/s", *(f"{r:,.0f}" for r in rates), f"{_median(rates):,.0f}"],
        _cpu_row(name, runs),
        [f"{name}: every line once, in order", *perfect, "-"],
    ]


def _fleet_rows(runs: list[FleetRun]) -> list[list[object]]:
    offered = [run.offered_rate for run in runs]
    rates = [run.rate for run in runs]
    drains = [run.worst_drain_s * 1000 for run in runs]
    backlog = [float(run.worst_backlog_lines) for run in runs]
    lines = [float(run.lines) for run in runs]
    bad = [sum(0 if c.perfect else 1 for c in run.checks) for run in runs]
    return [
        ["fleet: lines sent", *(f"{v:,.0f}" for v in lines), f"{_median(lines):,.0f}"],
        ["fleet: lines/s offered, all agents", *(f"{r:,.0f}" for r in offered),
         f"{_median(offered):,.0f}"],
        ["fleet: lines/s stored, to the last line", *(f"{r:,.0f}" for r in rates),
         f"{_median(rates):,.0f}"],
        ["fleet: worst agent's backlog (lines)", *(f"{v:.0f}" for v in backlog),
         f"{_median(backlog):.0f}"],
        ["fleet: worst drain after the last line (ms)", *(f"{v:.0f}" for v in drains),
         f"{_median(drains):.0f}"],
        _cpu_row("fleet", runs),
        ["fleet: the agents' CPU s per 100k lines (bench process)",
         *(f"{r.agents_cpu_s / r.lines * 100_000:.2f}" for r in runs),
         f"{_median([r.agents_cpu_s / r.lines * 100_000 for r in runs]):.2f}"],
        ["fleet: jobs with a lost/doubled/reordered line", *(str(b) for b in bad), "-"],
    ]  # fmt: skip


async def _run_phases(server: BenchServer, options: argparse.Namespace) -> list[list[object]]:
    phases = options.phases.split(",")
    latency: list[LatencyRun] = []
    single: list[SingleRun] = []
    raw: list[SingleRun] = []
    fleets: list[FleetRun] = []
    for round_no in range(1, options.rounds + 1):
        print(f"round {round_no}/{options.rounds}", file=sys.stderr)
        if "latency" in phases:
            latency.append(await measure_claim_latency(server, options.latency_jobs))
        if "single" in phases:
            single.append(await single_agent(server, options.single_lines))
        if "raw" in phases:
            raw.append(await raw_batches(server, options.single_lines))
        if "fleet" in phases:
            fleets.append(await fleet(server, options.fleet_agents, options.fleet_rate,
                                      options.fleet_seconds))  # fmt: skip
    rows: list[list[object]] = []
    if latency:
        rows += _latency_rows(latency)
    if single:
        rows += _single_rows("one agent (LogShipper)", single)
    if raw:
        rows += _single_rows("one connection, raw 1,000-line batches", raw)
    if fleets:
        rows += _fleet_rows(fleets)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; exit 1 when a target is missed or a line lost."""
    options = _options(sys.argv[1:] if argv is None else argv)
    print("command: .venv/bin/python -m bench.agents.run " + " ".join(sys.argv[1:]))
    for key, value in machine_summary().items():
        print(f"{key}: {value}")
    with tempfile.TemporaryDirectory(prefix="raibid-bench-agents-") as folder:
        server = start_server(Path(folder))
        try:
            rows = asyncio.run(_run_phases(server, options))
        finally:
            server.stop()
    rounds = [f"round {n}" for n in range(1, options.rounds + 1)]
    print(format_table(["measure", *rounds, "median"], rows))
    failed = [row[0] for row in rows if any(str(cell).startswith("NO") for cell in row)]
    failed += [row[0] for row in rows if str(row[0]).endswith("reordered line")
               and any(str(c) not in {"0", "-"} for c in row[1:])]  # fmt: skip
    for name in failed:
        print(f"FAILED: {name}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
