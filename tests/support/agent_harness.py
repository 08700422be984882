"""The pieces of the agent end-to-end tests: a `serve` process, agent processes, jobs over HTTP.

Everything is real: the server is `python -m raibid_api serve` with its embedded Redis in a
temporary folder, agents are `python -m raibid_api agent` processes (or
`tests.support.recording_agent`), and repositories are bare git repositories on disk cloned over
``file://``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from raibid_api.embedded import free_port
from tests.support.paths import REPO_ROOT
from tests.support.polling import eventually_sync
from tests.support.processes import children_of, clean_env, is_running, read_pid

WRITE_TOKEN = "agents-e2e-writer-token-0123456789"
AGENT_TOKEN = "agents-e2e-agent-token-0123456789"
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
LEASE_SECONDS = 3.0
START_TIMEOUT = 20.0
TERMINAL = frozenset({"success", "failed", "cancelled"})


def pipeline(*steps: dict[str, Any]) -> dict[str, str]:
    """The files of a repository whose `.raibid.yml` runs ``steps``."""
    return {".raibid.yml": yaml.safe_dump({"steps": list(steps)})}


@dataclass
class Process:
    """A child process of the test with its combined output in a file."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """Its pid."""
        return self.popen.pid

    def output(self) -> str:
        """What it wrote so far."""
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def spawn(argv: list[str], log: Path, cwd: Path) -> Process:
    """Start ``argv`` with the clean environment, output to ``log``."""
    env = clean_env() | {"PYTHONPATH": str(REPO_ROOT)}
    with log.open("wb") as sink:
        popen = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    return Process(popen, log)


def write_config(folder: Path, port: int, **sections: Any) -> Path:
    """The configuration of a server on ``port``; ``sections`` replace the defaults given here

    (but for ``server``, whose keys are added to the address given here)."""
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": None, "data_dir": str(folder / "redis")},
        "auth": {
            "tokens": [
                {"name": "writer", "scopes": ["read", "write"], "value": WRITE_TOKEN},
                {"name": "agent", "scopes": ["agent"], "value": AGENT_TOKEN},
            ]
        },
        "webhooks": {"spool_dir": str(folder / "spool")},
        "jobs": {"lease": f"{LEASE_SECONDS}s", "reaper_interval": "500ms", "max_attempts": 3},
        "dispatch": {"mode": "none"},
        "logging": {"level": "warning", "format": "json"},
    }
    # the server section is merged, so a test may add a key and keep the address
    server = config["server"] | sections.pop("server", {})
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config | sections | {"server": server}))
    return path


@dataclass
class Server:
    """A running `raibid-api serve` and an HTTP client of it."""

    process: Process
    url: str
    http: httpx.Client
    folder: Path
    agents: list[Process] = field(default_factory=list)

    def start_agent(self, agent_id: str, *extra: str) -> Process:
        """A `raibid-api agent` process working for this server."""
        argv = [sys.executable, "-m", "raibid_api", "agent", "--server", self.url,
                "--token", AGENT_TOKEN, "--agent-id", agent_id,
                "--workspace", str(self.folder / "workspaces"), *extra]  # fmt: skip
        return self.adopt(spawn(argv, self.folder / f"agent-{agent_id}.log", self.folder))

    def adopt(self, agent: Process) -> Process:
        """Stop ``agent`` with the server."""
        self.agents.append(agent)
        return agent

    def stop_agents(self, first: int = 0) -> None:
        """Stop the agents started from the ``first``-th on, and forget them."""
        for agent in self.agents[first:]:
            agent.stop()
        del self.agents[first:]

    def cancel_unfinished(self) -> None:
        """Cancel every job still pending or running, so none outlives the test that made it."""
        for status in ("pending", "running"):
            page = self.http.get("/jobs", params={"status": status, "limit": 200}).json()
            for job in page["jobs"]:
                self.http.post(f"/jobs/{job['id']}/cancel")

    def trigger(self, clone_url: str, commit: str) -> str:
        """A manual build of ``commit``; the new job's id."""
        body = {"repo": "acme/app", "clone_url": clone_url, "branch": "main", "commit": commit}
        response = self.http.post("/jobs", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def trigger_branch(self, clone_url: str, branch: str = "main") -> str:
        """A manual build of ``branch`` as it is when an agent checks it out; the job's id."""
        body = {"repo": "acme/app", "clone_url": clone_url, "branch": branch}
        response = self.http.post("/jobs", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as `GET /jobs/{id}` shows it."""
        response = self.http.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    def wait_until_ended(self, job_id: str, within: float = 20.0) -> dict[str, Any]:
        """The job once it reached a terminal status."""
        eventually_sync(
            lambda: self.job(job_id)["status"] in TERMINAL, within, f"job {job_id} to end"
        )
        return self.job(job_id)

    def log(self, job_id: str) -> list[str]:
        """The job's log lines."""
        response = self.http.get(f"/jobs/{job_id}/logs")
        assert response.status_code == 200, response.text
        return response.text.splitlines()

    def agents_seen(self) -> dict[str, dict[str, Any]]:
        """`GET /agents`, by agent id."""
        return {agent["agent_id"]: agent for agent in self.http.get("/agents").json()}

    def job_call(self, job_id: str, action: str, token: str, body: object) -> httpx.Response:
        """An agent protocol call about ``job_id`` with ``token``."""
        headers = {"Authorization": f"Bearer {token}"}
        return self.http.post(f"/agent/jobs/{job_id}/{action}", json=body, headers=headers)

    def diagnostics(self) -> str:
        """The server's and agents' output, for a failure message."""
        parts = [f"--- server\n{self.process.output()}"]
        parts += [f"--- agent {a.pid}\n{a.output()}" for a in self.agents]
        return "\n".join(parts)


def answers_health(server: Server) -> bool:
    """Whether the server answers /health; fails the test at once if it exited."""
    if server.process.popen.poll() is not None:
        pytest.fail(f"server exited:\n{server.process.output()}")
    try:
        return server.http.get("/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def start_server(folder: Path, **sections: Any) -> Server:
    """A `raibid-api serve` process answering on a free port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(folder, port, **sections)
    argv = [sys.executable, "-m", "raibid_api", "serve", "--config", str(config)]
    process = spawn(argv, folder / "server.log", folder)
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=url, headers=WRITE, timeout=10.0)
    server = Server(process, url, http, folder)
    eventually_sync(lambda: answers_health(server), START_TIMEOUT, "the server to answer /health")
    return server


def stop_server(server: Server) -> None:
    """Stop the agents, then the server."""
    server.stop_agents()
    server.process.stop(timeout=15.0)
    server.http.close()


def wait_for_pid(path: Path, within: float = 15.0) -> int:
    """The pid a step writes to ``path``, waiting for it."""
    eventually_sync(lambda: read_pid(path) is not None, within, f"a step to write {path.name}")
    pid = read_pid(path)
    assert pid is not None
    return pid


def local_agents(server: Server) -> list[int]:
    """The pids of the built-in agent processes `serve` started (and that still run)."""
    found = []
    for pid in children_of(server.process.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # it ended since it was listed
            continue
        if b"raibid_api\x00agent\x00" in command:
            found.append(pid)
    return found


def wait_until_gone(pids: list[int], within: float) -> float:
    """Seconds until every one of ``pids`` is gone; fails after ``within``."""
    started = time.monotonic()
    eventually_sync(lambda: not any(is_running(pid) for pid in pids), within, f"{pids} to be gone")
    return time.monotonic() - started
