"""Fixtures of the end-to-end tests: `python -m raibid_api serve` as a real process, spoken to over
real HTTP, with its own embedded Redis in a temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from raibid_api.embedded import free_port
from tests.conftest import eventually

WRITE_TOKEN = "e2e-writer-token-0123456789"
READ_TOKEN = "e2e-reader-token-0123456789"
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
START_TIMEOUT = 20.0


def clean_env() -> dict[str, str]:
    """This process's environment without any ``RAIBID_*`` setting that could leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RAIBID_")}


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (of every one of its threads)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def command_of(pid: int) -> str:
    """The command line of ``pid``, or '' when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@dataclass
class Server:
    """One running `raibid-api serve` process."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        """What the process wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace")

    def redis_pid(self) -> int:
        """The pid of the embedded redis-server this server started."""
        redis = [pid for pid in children_of(self.process.pid) if "redis-server" in command_of(pid)]
        assert len(redis) == 1, (redis, self.output())
        return redis[0]

    def terminate(self, timeout: float = 15.0) -> int:
        """Send SIGTERM, as Kubernetes and systemd do, and wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"server ignored SIGTERM for {timeout}s:\n{self.output()}")


def write_config(folder: Path, port: int, data_dir: Path) -> Path:
    """A configuration for a server on ``port`` with an embedded Redis keeping data in
    ``data_dir``."""
    config = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": None, "data_dir": str(data_dir)},
        "auth": {
            "tokens": [
                {"name": "writer", "scopes": ["read", "write"], "value": WRITE_TOKEN},
                {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
            ]
        },
        "webhooks": {"spool_dir": str(folder / "spool")},
        "dispatch": {"mode": "none"},
        # info, so the log shows uvicorn's shutdown steps
        "logging": {"level": "info", "format": "json"},
    }
    path = folder / f"config-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


ServerFactory = Callable[[Path], Server]


def launch_server(folder: Path, config: Path, port: int) -> Server:
    """`python -m raibid_api serve --config <config>` in ``folder``, once it answers /health.

    Its output goes to ``server-<port>.log`` in ``folder``; stopping it is the caller's part.
    """
    log = folder / f"server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "raibid_api", "serve", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            cwd=folder,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        eventually(lambda: answers_health(server), START_TIMEOUT, "the server to answer /health")
    except BaseException:
        process.kill()
        process.wait()
        raise
    return server


def raibid_api(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `raibid-api` console script with ``args``."""
    script = Path(sys.executable).with_name("raibid-api")
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="session")
def openapi_spec() -> dict[str, object]:
    """The OpenAPI document `raibid-api openapi` prints."""
    result = raibid_api("openapi")
    assert result.returncode == 0, result.stderr
    spec: dict[str, object] = json.loads(result.stdout)
    return spec


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers that keep their Redis data in a given folder; all are stopped at the end."""
    started: list[Server] = []

    def start(data_dir: Path) -> Server:
        port = free_port()
        server = launch_server(tmp_path, write_config(tmp_path, port, data_dir), port)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def answers_health(server: Server) -> bool:
    """Whether ``server`` answers /health; fails the test at once if it has exited."""
    if server.process.poll() is not None:
        pytest.fail(f"server exited with {server.process.returncode}:\n{server.output()}")
    try:
        return httpx.get(f"{server.base_url}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False
