"""Cancel latency: from `POST /jobs/{id}/cancel` until the running step's process group is gone.

    .venv/bin/python -m bench.agents.cancel                 # 20 jobs on each kind of agent
    .venv/bin/python -m bench.agents.cancel --jobs 5 --agents remote

For each kind of agent (``built-in``: `serve` in ``dispatch.mode: local``, which runs its agent as
a child process; ``remote``: a `raibid-api agent` process beside it), jobs run one at a time. Each
job's only step writes its process group id to a file and prints a line every 50 ms for ever.
Once the group is alive and its lines reach the server, the job is cancelled, and the benchmark
polls (every 2 ms) until no process of the group is left. The lease is the default 60 s, so an
agent's heartbeat is held for 20 s at a time; before heartbeats were held, the step ran on for up
to those 20 s. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from bench.agents.server import AGENT_TOKEN, WRITE, BenchServer, start_server
from bench.common import ChildProcess, format_table, machine_summary, percentile

KINDS = ("built-in", "remote")
_POLL_S = 0.002
_STEP_START_S = 60.0
_GONE_WITHIN_S = 60.0


def _options(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.agents.cancel", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20, help="jobs cancelled per kind of agent")
    parser.add_argument("--agents", default=",".join(KINDS), help="built-in, remote or both")
    options = parser.parse_args(argv)
    if set(options.agents.split(",")) - set(KINDS):
        parser.error(f"--agents takes {' and '.join(KINDS)}")
    return options


def _git(cwd: Path, *args: str) -> None:
    env = os.environ | {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.test",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.test",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _repository(folder: Path, marks: Path) -> str:
    """A bare repository whose pipeline's step loops for ever; its ``file://`` URL."""
    bare, work = folder / "remote.git", folder / "work"
    bare.mkdir(parents=True)
    work.mkdir()
    _git(bare, "init", "--quiet", "--bare")
    _git(work, "init", "--quiet")
    step = f"echo $$ > {marks}/$RAIBID_JOB_ID; while true; do echo tick; sleep 0.05; done"
    (work / ".raibid.yml").write_text(f"steps:\n  - name: loop\n    run: '{step}'\n")
    _git(work, "add", "--all")
    _git(work, "commit", "--quiet", "-m", "loop")
    _git(work, "push", "--quiet", str(bare), "HEAD:refs/heads/main")
    return bare.as_uri()


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process of group ``pgid`` is left."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[2] == str(pgid) and fields[0] not in {"Z", "X"}:
            return True
    return False


def _until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {within} s")
        time.sleep(_POLL_S)


def _read_pgid(path: Path) -> int | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") else None


def _cancel_one(http: httpx.Client, clone_url: str, marks: Path) -> float:
    """Run one looping job, cancel it; milliseconds from the cancel until its group is gone."""
    created = http.post("/jobs", json={"repo": "bench/cancel", "clone_url": clone_url,
                                       "branch": "main"})  # fmt: skip
    created.raise_for_status()
    job_id = created.json()["id"]
    mark = marks / job_id
    _until(lambda: _read_pgid(mark) is not None, _STEP_START_S, "step start")
    pgid = _read_pgid(mark)
    assert pgid is not None  # noqa: S101  (just read)
    _until(lambda: "tick" in http.get(f"/jobs/{job_id}/logs").text, _STEP_START_S, "step line")
    started = time.perf_counter()
    http.post(f"/jobs/{job_id}/cancel").raise_for_status()
    _until(lambda: not group_alive(pgid), _GONE_WITHIN_S, "end of the step's process group")
    took_ms = (time.perf_counter() - started) * 1000
    # the agent reports and frees itself before the next job, so jobs never overlap
    _until(lambda: http.get("/queue").json()["claimed"] == 0, _STEP_START_S, "agent free")
    return took_ms


def _agent_process(server: BenchServer, workdir: Path) -> ChildProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAIBID_")}
    return ChildProcess(
        [sys.executable, "-m", "raibid_api", "agent", "--server", server.base_url,
         "--agent-id", "bench-remote", "--workspace", str(workdir / "remote-ws")],
        workdir / "agent.log", env=env | {"RAIBID_AGENT_TOKEN": AGENT_TOKEN}, cwd=workdir,
    ).start()  # fmt: skip


def measure(kind: str, jobs: int, workdir: Path) -> list[float]:
    """Cancel ``jobs`` looping jobs on a ``kind`` agent; the milliseconds of each."""
    workdir.mkdir(parents=True)
    marks = workdir / "marks"
    marks.mkdir()
    clone_url = _repository(workdir / "repo", marks)
    local: dict[str, object] = {"mode": "local", "local_workspace": str(workdir / "local-ws")}
    server = start_server(
        workdir, dispatch=local if kind == "built-in" else {"mode": "none"}, jobs={"lease": "60s"}
    )
    agent = _agent_process(server, workdir) if kind == "remote" else None
    try:
        with httpx.Client(base_url=server.base_url, headers=WRITE, timeout=10.0) as http:
            return [_cancel_one(http, clone_url, marks) for _ in range(jobs)]
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table."""
    options = _options(sys.argv[1:] if argv is None else argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="raibid-bench-cancel-") as folder:
        for kind in options.agents.split(","):
            took = measure(kind, options.jobs, Path(folder) / kind)
            rows.append([kind, len(took), f"{percentile(took, 50):.1f}",
                         f"{percentile(took, 99):.1f}", f"{max(took):.1f}"])  # fmt: skip
    print("cancel -> step's process group gone (ms)")
    print(format_table(["agent", "jobs", "p50", "p99", "max"], rows))
    for name, value in machine_summary().items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
