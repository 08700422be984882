"""The processes a jobs benchmark runs side by side: raibid-api itself and the bare baseline."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.common import ChildProcess, wait_for_http
from raibid_api.embedded import free_port

READ_TOKEN = "bench-read-token-0123456789abcdef"  # noqa: S105  (a throwaway token of the bench)
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}
START_TIMEOUT = 30.0


@dataclass
class Target:
    """One HTTP server under load."""

    name: str
    port: int
    child: ChildProcess

    @property
    def base_url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop its process."""
        self.child.stop()

    def cpu_seconds(self) -> float:
        """CPU time (user + system, every thread) its process has used so far."""
        fields = Path(f"/proc/{self.child.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_config(redis_url: str, port: int, level: str) -> dict[str, object]:
    """A raibid-api config for a benchmark: an external Redis, tokens required, nothing dispatched.

    The access log is JSON, as in production; with ``level`` warning it is off, with info it writes
    one line per request.
    """
    return {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": redis_url},
        "auth": {
            "anonymous_read": False,
            "tokens": [{"name": "bench-reader", "scopes": ["read"], "value": READ_TOKEN}],
        },
        "dispatch": {"mode": "none"},
        "logging": {"level": level, "format": "json"},
    }


def start_server(name: str, redis_url: str, workdir: Path, level: str) -> Target:
    """`python -m raibid_api serve` with its own config (uvicorn, uvloop, httptools, 1 worker)."""
    port = free_port()
    config = workdir / f"{name}.yaml"
    config.write_text(yaml.safe_dump(server_config(redis_url, port, level)))
    child = ChildProcess(
        [sys.executable, "-m", "raibid_api", "serve", "--config", str(config)],
        workdir / f"{name}.log",
        env=_environ(),
    ).start()
    target = Target(name, port, child)
    _wait(target, f"{target.base_url}/ready")
    return target


def start_baseline(name: str, redis_url: str, workdir: Path, probe_path: str) -> Target:
    """`bench.jobs.baseline` on uvicorn with the same loop, parser and worker count."""
    port = free_port()
    options = f"--host 127.0.0.1 --port {port} --loop uvloop --http httptools --workers 1"
    child = ChildProcess(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.jobs.baseline:app",
            *options.split(),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        workdir / f"{name}.log",
        env={**_environ(), "BENCH_REDIS_URL": redis_url},
    ).start()
    target = Target(name, port, child)
    _wait(target, f"{target.base_url}{probe_path}")
    return target


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RAIBID_")}


def _wait(target: Target, url: str) -> None:
    try:
        wait_for_http(url, START_TIMEOUT, AUTH)
    except TimeoutError:
        tail = target.child.output_tail()
        target.stop()
        raise RuntimeError(f"{target.name} did not start:\n{tail}") from None
