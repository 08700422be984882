"""The webhook intake while the built-in agents build: a build must not slow the intake down.

    .venv/bin/python -m bench.webhooks.busy [--seconds 6] [--rounds 3] [--agents 2]
        [--burst 50] [--connections 16]

Two raibid-api servers on one redis-server (each under its own key prefix), in alternating
closed-loop rounds as in `bench.webhooks.run`:

- ``idle``: ``dispatch.mode: none``, nothing builds;
- ``busy``: ``dispatch.mode: local`` with ``--agents`` built-in agents, each running a job whose
  one step prints about 1,000 lines a second until it is cancelled (a local git repository with a
  ``.raibid.yml``), so the agents run steps and ship logs through every round. The webhook jobs
  queue behind them: no agent is free to take one.

The table gives, per server, the accepted deliveries a second (median over rounds), p50 and p99,
and for ``busy`` the log lines the builds wrote during its rounds (proof that they ran).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import uvloop
from redis import Redis

from bench.common import format_table, machine_summary, percentile
from bench.webhooks.load import run_load
from bench.webhooks.run import SECRET, Server, start_raibid
from raibid_api.embedded import EmbeddedRedis
from raibid_api.storage.keys import Keys

WRITE_TOKEN = "bench-write-token-0123456789abcdef"  # noqa: S105  (a throwaway token of the bench)
BUSY_PREFIX = "bench-busy"
# ``burst`` lines, then 50 ms of sleep, for ever
PIPELINE = """steps:
  - name: print
    run: |
      i=0
      while :; do
        i=$((i+1)); echo "line $i of a build that prints steadily"
        if [ $((i % {burst})) -eq 0 ]; then sleep 0.05; fi
      done
"""


def make_repository(root: Path, burst: int) -> str:
    """A git repository whose pipeline prints until cancelled; its clone URL."""
    root.mkdir(parents=True)
    (root / ".raibid.yml").write_text(PIPELINE.replace("{burst}", str(burst)))
    env = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", ".raibid.yml"],
                 ["git", "commit", "-q", "-m", "pipeline"]):  # fmt: skip
        subprocess.run(argv, cwd=root, env=env, check=True)
    return f"file://{root}"


def start_builds(server: Server, clone_url: str, count: int) -> list[str]:
    """Trigger ``count`` jobs and wait until each runs and has written log lines."""
    base = f"http://127.0.0.1:{server.port}"
    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        ids = []
        for _ in range(count):
            body = {"repo": "bench/busy", "clone_url": clone_url, "branch": "main"}
            ids.append(client.post("/jobs", json=body).raise_for_status().json()["id"])
        for job_id in ids:
            _wait_running(client, job_id)
    return ids


def _wait_running(client: httpx.Client, job_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "line " in client.get(f"/jobs/{job_id}/logs", params={"tail": 1}).text:
            return
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not start printing within {timeout} s")


def cancel_builds(server: Server, ids: list[str]) -> None:
    """Cancel the builds (their agents kill the steps)."""
    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", headers=headers) as client:
        for job_id in ids:
            client.post(f"/jobs/{job_id}/cancel")


def log_lines(redis: Redis, ids: list[str]) -> int:
    """Entries ever added to the builds' event streams (XLEN stops growing at its MAXLEN)."""
    keys = Keys(BUSY_PREFIX)
    return sum(int(redis.xinfo_stream(keys.events(job_id))["entries-added"]) for job_id in ids)


async def rounds(
    servers: list[Server], args: argparse.Namespace, redis: Redis, ids: list[str]
) -> dict[str, list[tuple[float, float, float, int]]]:
    """Alternating rounds: (accepted/s, p50 ms, p99 ms, build log lines written) per round."""
    secret = SECRET.encode()
    for server in servers:
        await run_load(server.port, secret, connections=args.connections, seconds=2)
    found: dict[str, list[tuple[float, float, float, int]]] = {s.name: [] for s in servers}
    for number in range(args.rounds):
        order = servers if number % 2 == 0 else list(reversed(servers))
        for server in order:
            lines_before = log_lines(redis, ids)
            load = await run_load(
                server.port, secret, connections=args.connections, seconds=args.seconds
            )
            written = log_lines(redis, ids) - lines_before
            found[server.name].append((
                load.accepted / load.seconds, percentile(load.latencies_ms, 50),
                percentile(load.latencies_ms, 99), written,
            ))  # fmt: skip
    return found


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--burst", type=int, default=50, help="lines a step prints per 50 ms")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-busy-"))
    redis_server = EmbeddedRedis(workdir / "redis", appendonly=True).start()
    redis = Redis.from_url(redis_server.url)
    servers: list[Server] = []
    try:
        clone_url = make_repository(workdir / "repo", args.burst)
        servers.append(start_raibid(redis_server.url, workdir, "info", name="idle",
                                    prefix="bench-idle"))  # fmt: skip
        busy = {
            "auth": {
                "tokens": [{"name": "bench", "scopes": ["read", "write"], "value": WRITE_TOKEN}]
            },
            "dispatch": {
                "mode": "local",
                "local_concurrency": args.agents,
                "local_workspace": str(workdir / "workspaces"),
            },
        }
        servers.append(start_raibid(redis_server.url, workdir, "info", name="busy",
                                    prefix=BUSY_PREFIX, extra=busy))  # fmt: skip
        ids = start_builds(servers[1], clone_url, args.agents)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            found = runner.run(rounds(servers, args, redis, ids))
        cancel_builds(servers[1], ids)
        _report(args, found)
    finally:
        for server in servers:
            server.child.stop()
        redis.close()
        redis_server.stop()


def _report(
    args: argparse.Namespace, found: dict[str, list[tuple[float, float, float, int]]]
) -> None:
    print("machine:", ", ".join(f"{k}: {v}" for k, v in machine_summary().items()))
    print(f"{args.agents} built-in agents building in `busy` ({args.burst} lines per 50 ms each); "
          f"connections {args.connections}, "
          f"{args.rounds} rounds of {args.seconds:g} s each\n")  # fmt: skip
    rows = []
    for name, samples in found.items():
        rates = [s[0] for s in samples]
        rows.append([name, f"{statistics.median(rates):.0f}",
                     f"{statistics.median(s[1] for s in samples):.1f}",
                     f"{statistics.median(s[2] for s in samples):.1f}",
                     " / ".join(f"{r:.0f}" for r in rates),
                     " / ".join(str(s[3]) for s in samples)])  # fmt: skip
    headers = ["server", "accepted/s (median)", "p50 ms", "p99 ms", "accepted/s per round",
               "build log lines written per round"]  # fmt: skip
    print(format_table(headers, rows))
    idle, busy = (float(str(row[1])) for row in rows)
    print(f"\nbusy / idle: {busy / idle:.0%} of the accepted deliveries/s")


if __name__ == "__main__":
    main()
