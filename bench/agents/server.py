"""The server an agents benchmark runs against: `raibid-api serve` as `make run` starts it.

One uvicorn worker (uvloop, httptools), its embedded Redis (append-only file, fsync every second)
in a temporary folder, nothing dispatched: the benchmark itself plays the agents (the cancel
benchmark asks for the built-in agent instead).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.common import ChildProcess, wait_for_http
from raibid_api.embedded import free_port

WRITE_TOKEN = "bench-agents-writer-token-0123456789"  # noqa: S105  (throwaway tokens of the bench)
AGENT_TOKEN = "bench-agents-agent-token-0123456789"  # noqa: S105
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
LOG_LINES_KEPT = 2_000_000  # logs.max_lines: every line a run sends stays readable for the check
START_TIMEOUT = 30.0


@dataclass
class BenchServer:
    """A running server and what the benchmark needs to know of it."""

    child: ChildProcess
    base_url: str

    @property
    def pid(self) -> int:
        """The server's pid."""
        assert self.child.process is not None  # noqa: S101  (started before it is asked)
        return self.child.process.pid

    def _redis(self) -> tuple[int, int]:
        """(pid, port) of the embedded redis-server (its process title names its port)."""
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            for child in (task / "children").read_text().split():
                title = Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
                found = re.search(r"redis-server[^\d]*127\.0\.0\.1:(\d+)", title)
                if found:
                    return int(child), int(found[1])
        raise RuntimeError("the server's embedded redis-server was not found")

    def redis_url(self) -> str:
        """The URL of the embedded redis-server."""
        return f"redis://127.0.0.1:{self._redis()[1]}/0"

    def cpu_seconds(self) -> float:
        """CPU seconds the server and its Redis have used so far, together."""
        return _cpu_seconds(self.pid) + _cpu_seconds(self._redis()[0])

    def stop(self) -> None:
        """Stop the server (and with it its Redis)."""
        self.child.stop()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(
    workdir: Path, pythonpath: Path | None = None, **sections: dict[str, object]
) -> BenchServer:
    """`python -m raibid_api serve` on a free port, ready when /ready answers.

    ``pythonpath`` runs the code of another tree (its ``src``, e.g. an archive of main) instead
    of this one's. ``sections`` replace whole sections of the configuration (``dispatch``,
    ``jobs`` ...).
    """
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": None, "data_dir": str(workdir / "redis")},
        "auth": {
            "tokens": [
                {"name": "bench-writer", "scopes": ["read", "write"], "value": WRITE_TOKEN},
                {"name": "bench-agent", "scopes": ["agent"], "value": AGENT_TOKEN},
            ]
        },
        "webhooks": {"spool_dir": str(workdir / "spool")},
        "jobs": {"lease": "5m"},
        "logs": {"max_lines": LOG_LINES_KEPT},
        "dispatch": {"mode": "none"},
        "logging": {"level": "warning", "format": "json"},
    }
    path = workdir / "agents-bench.yaml"
    path.write_text(yaml.safe_dump(config | sections))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAIBID_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    child = ChildProcess(
        [sys.executable, "-m", "raibid_api", "serve", "--config", str(path)],
        workdir / "server.log",
        env=env,
        cwd=workdir,
    ).start()
    server = BenchServer(child, f"http://127.0.0.1:{port}")
    try:
        wait_for_http(f"{server.base_url}/ready", START_TIMEOUT)
    except TimeoutError:
        tail = child.output_tail()
        child.stop()
        raise RuntimeError(f"raibid-api did not become ready:\n{tail}") from None
    return server
