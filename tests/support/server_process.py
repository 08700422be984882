"""`python -m raibid_api serve` as a real process for the end-to-end tests, spoken to over HTTP.

Each server has its own embedded Redis in a temporary folder and the tokens named here.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from raibid_api.embedded import free_port
from tests.support.polling import eventually_sync
from tests.support.processes import children_of, clean_env, command_of, is_running

WRITE_TOKEN = "e2e-writer-token-0123456789"
READ_TOKEN = "e2e-reader-token-0123456789"
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
OPERATOR_TOKEN = "e2e-operator-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
START_TIMEOUT = 20.0


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


def write_config(folder: Path, data_dir: Path, **server: Any) -> Path:
    """A configuration with an embedded Redis keeping data in ``data_dir``, the e2e tokens, and
    ``server`` keys as given (none: the defaults, 127.0.0.1:8080 and no public_url)."""
    config = {
        "server": server,
        "redis": {"url": None, "data_dir": str(data_dir)},
        "auth": {
            "tokens": [
                {"name": "writer", "scopes": ["read", "write"], "value": WRITE_TOKEN},
                {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
            ]
        },
        "webhooks": {"spool_dir": str(folder / "spool")},
        "dispatch": {"mode": "none"},
        # info, so the log shows uvicorn's start-up and shutdown steps
        "logging": {"level": "info", "format": "json"},
    }
    path = folder / f"config-{len(list(folder.glob('config-*')))}.yaml"
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
        eventually_sync(
            lambda: answers_health(server), START_TIMEOUT, "the server to answer /health"
        )
    except BaseException:
        process.kill()
        process.wait()
        raise
    return server


@contextmanager
def served(folder: Path, **sections: dict[str, Any]) -> Iterator[Server]:
    """A server process in ``folder`` on a free port, killed when the block ends.

    It has its own embedded Redis, a spool and no dispatcher; ``sections`` add keys to (or
    make) the configuration's sections.
    """
    port = free_port()
    config: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": None, "data_dir": str(folder / "redis")},
        "webhooks": {"spool_dir": str(folder / "spool")},
        "dispatch": {"mode": "none"},
    }
    for name, keys in sections.items():
        config[name] = config.get(name, {}) | keys
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    running = launch_server(folder, path, port)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


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


def answers_health(server: Server) -> bool:
    """Whether ``server`` answers /health; fails the test at once if it has exited."""
    if server.process.poll() is not None:
        pytest.fail(f"server exited with {server.process.returncode}:\n{server.output()}")
    try:
        return httpx.get(f"{server.base_url}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


TRIGGER = {
    "repo": "acme/widgets",
    "clone_url": "https://git.example.test/acme/widgets.git",
    "branch": "main",
}


def port_answers(port: int) -> bool:
    """Whether something accepts connections on ``port`` of loopback."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_port(pid: int) -> int:
    """The port the redis-server with ``pid`` listens on."""
    # redis-server retitles itself "redis-server 127.0.0.1:<port>"
    found = re.search(r"127\.0\.0\.1:(\d+)", command_of(pid))
    assert found, command_of(pid)
    return int(found[1])


def stop_cleanly(server: Server, redis_pid: int) -> None:
    """SIGTERM ``server``: it shuts down in full, exits 0 and takes its Redis along."""
    port = redis_port(redis_pid)
    assert server.terminate() == 0, server.output()
    assert "Application shutdown complete" in server.output()
    eventually_sync(lambda: not is_running(redis_pid), 5.0, "the embedded redis-server to exit")
    assert not port_answers(port)
    assert "Traceback" not in server.output()
