"""The fault suite's harness: servers on a Redis the test breaks, load while it breaks, and figures.

`Load` sends signed Gitea pushes (each a distinct commit on a branch of its own, so each makes
one job) to one or more `raibid-api serve` processes from a few threads, and remembers every
answer: when it was sent, how long it took, its status, whether it was spooled. `Agents` claims
jobs, ships log lines and completes them the same way. `check_outcome` reads what Redis holds
afterwards: every acknowledged delivery has its job, no delivery has two, no job has two queue
entries. `Figures` are what the suite reports for each fault (printed, and appended as one JSON
line to the file ``$FAULT_FIGURES_FILE`` names, which `bench.faults.run` collects).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import yaml
from redis import Redis

from raibid_api.embedded import free_port
from tests.support.forge_double import ForgeDouble
from tests.support.polling import eventually_sync
from tests.support.processes import clean_env
from tests.support.server_process import START_TIMEOUT, answers_health
from tests.support.server_process import Server as ServerProcess
from tests.support.webhook_deliveries import push_body, sha
from tests.support.webhook_samples import SECRET, gitea_headers

PREFIX = "faults"
AGENT_TOKEN = "fault-agent-token-0123456789"
READ_TOKEN = "fault-reader-token-0123456789"
SOCKET_TIMEOUT_S = 1.0
"""`redis.socket_timeout` of the servers under test: the bound every answer must keep (+1 s)."""
FIGURES_FILE = "FAULT_FIGURES_FILE"


@dataclass
class Answer:
    """One request of the load and what came back."""

    kind: str
    key: str
    target: str
    """The server's base URL."""
    sent: float
    seconds: float
    status: int | None
    """None: no HTTP answer (connection refused or reset, or the client's own timeout)."""
    spooled: bool = False

    @property
    def acknowledged(self) -> bool:
        """A 2xx: the server promised to keep it."""
        return self.status is not None and 200 <= self.status < 300


def server_config(
    folder: Path, port: int, redis: dict[str, Any], **sections: dict[str, Any]
) -> Path:
    """A configuration for a server on ``port`` of a Redis the test runs (``redis`` keys)."""
    base_url = f"http://127.0.0.1:{port}"
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": base_url},
        "redis": {
            "key_prefix": PREFIX,
            "socket_timeout": f"{SOCKET_TIMEOUT_S:g}s",
            "connect_timeout": "1s",
            "pool_timeout": "1s",
            **redis,
        },
        "auth": {
            "tokens": [
                {"name": "agent", "scopes": ["agent"], "value": AGENT_TOKEN},
                {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
            ]
        },
        "webhooks": {
            "gitea": {"secret": SECRET},
            "spool_dir": str(folder / f"spool-{port}"),
            "auto_cancel": False,
            "rate_limit_per_minute": 1_000_000,
        },
        "jobs": {"reaper_interval": "1s"},
        "dispatch": {"mode": "none"},
        "logging": {"level": "warning", "format": "json"},
    }
    for name, values in sections.items():
        config[name] = config.get(name, {}) | values
    path = folder / f"config-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_server(folder: Path, redis: dict[str, Any], **sections: dict[str, Any]) -> ServerProcess:
    """`python -m raibid_api serve` on a free port, once it answers /ready."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = server_config(folder, port, redis, **sections)
    log = folder / f"server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "raibid_api", "serve", "--config", str(config)],
            stdout=sink, stderr=subprocess.STDOUT, env=clean_env(), cwd=folder,
        )  # fmt: skip
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        eventually_sync(lambda: answers_health(server), START_TIMEOUT, "the server to start")
        eventually_sync(lambda: is_ready(server), START_TIMEOUT, "the server to be ready")
    except BaseException:
        process.kill()
        process.wait()
        raise
    return server


def stop_server(server: ServerProcess) -> None:
    """SIGKILL ``server`` unless it has ended."""
    if server.process.poll() is None:
        server.process.kill()
    server.process.wait()


def is_ready(server: ServerProcess) -> bool:
    """Whether ``server`` answers /ready with 200."""
    try:
        return httpx.get(f"{server.base_url}/ready", timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


def seconds_until_ready(servers: list[ServerProcess], since: float, timeout: float = 30.0) -> float:
    """Wait until every live server in ``servers`` is ready; seconds from ``since`` (monotonic)."""
    live = [s for s in servers if s.process.poll() is None]
    eventually_sync(lambda: all(is_ready(s) for s in live), timeout, "/ready 200 again")
    return round(time.monotonic() - since, 2)


class Threads:
    """Worker threads that run until `stop`, each recording its answers."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.answers: list[Answer] = []

    def _spawn(self, count: int) -> None:
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(count)]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def _run(self, worker: int) -> None:
        raise NotImplementedError

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called."""
        return self._stop.is_set()

    def stop(self) -> list[Answer]:
        """Stop every worker, wait for it, and return every answer recorded."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        with self._lock:
            return list(self.answers)

    def count(self, kind: str, *, acknowledged: bool = True) -> int:
        """How many answers of ``kind`` were (or were not) acknowledged so far."""
        with self._lock:
            return sum(1 for a in self.answers if a.kind == kind and a.acknowledged == acknowledged)


class Load(Threads):
    """Signed pushes to ``servers`` in turn, from ``workers`` threads, until `stop`."""

    def __init__(self, servers: list[str], workers: int = 3, timeout: float = 10.0) -> None:
        super().__init__()
        self._servers = servers
        self._timeout = timeout
        self._counter = iter(range(sys.maxsize))
        self._spawn(workers)

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=self._timeout) as http:
            while not self.stopping:
                n = next(self._counter)
                body = push_body(sha(n + 1), branch=f"fault-{n}")
                headers = gitea_headers("push", "push", body)
                key = headers["x-gitea-delivery"]
                base = self._servers[n % len(self._servers)]
                sent = time.monotonic()
                try:
                    response = http.post(f"{base}/webhook/gitea", content=body, headers=headers)
                except httpx.TransportError:
                    self._record(Answer("webhook", key, base, sent, time.monotonic() - sent, None))
                    continue
                spooled = response.status_code == 202 and response.json().get("spooled") is True
                self._record(Answer("webhook", key, base, sent, time.monotonic() - sent,
                                    response.status_code, spooled))  # fmt: skip


class Agents(Threads):
    """Agents that claim, ship three log lines and complete, against ``servers`` in turn."""

    def __init__(self, servers: list[str], workers: int = 2, timeout: float = 10.0) -> None:
        super().__init__()
        self._servers = servers
        self._timeout = timeout
        self.shipped: dict[str, int] = {}
        """Job id -> log lines acknowledged."""
        self.completed: dict[str, tuple[str, str]] = {}
        """Job id -> (repo, commit) of the jobs completed with a 2xx."""
        self._spawn(workers)

    def _run(self, worker: int) -> None:
        auth = {"Authorization": f"Bearer {AGENT_TOKEN}"}
        turn = 0
        with httpx.Client(timeout=self._timeout) as http:
            while not self.stopping:
                turn += 1
                base = self._servers[turn % len(self._servers)]
                claim = self._post(http, "claim", base, "/agent/claim", auth,
                                   {"agent_id": f"fault-agent-{worker}", "wait": 0})  # fmt: skip
                if claim is None or claim.status_code != 200:
                    continue
                job = claim.json()
                job_id, token = job["job"]["id"], job["token"]
                mine = {"Authorization": f"Bearer {token}"}
                lines = [f"line {i}" for i in range(3)]
                logs = self._post(http, "logs", base, f"/agent/jobs/{job_id}/logs", mine,
                                  {"offset": 0, "lines": lines})  # fmt: skip
                if logs is not None and logs.status_code == 200:
                    with self._lock:
                        self.shipped[job_id] = len(lines)
                done = self._post(http, "complete", base, f"/agent/jobs/{job_id}/complete", mine,
                                  {"status": "success", "exit_code": 0})  # fmt: skip
                if done is not None and done.status_code == 200:
                    with self._lock:
                        self.completed[job_id] = (job["job"]["repo"], job["job"]["commit"])

    def _post(
        self, http: httpx.Client, kind: str, base: str, path: str, headers: dict[str, str],
        body: dict[str, Any],
    ) -> httpx.Response | None:  # fmt: skip
        sent = time.monotonic()
        try:
            response = http.post(f"{base}{path}", json=body, headers=headers)
        except httpx.TransportError:
            self._record(Answer(kind, path, base, sent, time.monotonic() - sent, None))
            return None
        self._record(Answer(kind, path, base, sent, time.monotonic() - sent, response.status_code))
        return response


def spools_empty(folder: Path) -> bool:
    """Whether no server's spool under ``folder`` holds a delivery still to replay."""
    return not any(folder.glob("spool-*/[0-9]*.json"))


@dataclass
class Outcome:
    """What Redis holds after the fault, against what the load was told."""

    lost: list[str]
    """Acknowledged deliveries without a job."""
    duplicated: int
    """Deliveries with more than one job, plus jobs with more than one queue entry."""


def jobs_by_delivery(redis: Redis) -> Counter[str]:
    """How many jobs each delivery id made."""
    found: Counter[str] = Counter()
    for key in redis.scan_iter(match=f"{PREFIX}:job:*", count=1000):
        if str(key).endswith(":events"):
            continue
        delivery = redis.hget(key, "delivery_id")
        if delivery:
            found[str(delivery)] += 1
    return found


def check_outcome(redis: Redis, answers: list[Answer]) -> Outcome:
    """Every acknowledged delivery has one job; no job is queued twice."""
    made = jobs_by_delivery(redis)
    acknowledged = [a.key for a in answers if a.kind == "webhook" and a.acknowledged]
    lost = [key for key in acknowledged if made[key] == 0]
    doubled = sum(1 for count in made.values() if count > 1)
    entries = cast("list[tuple[str, dict[str, str]]]", redis.xrange(f"{PREFIX}:jobs"))
    queued = Counter(fields["job_id"] for _, fields in entries)
    doubled += sum(1 for count in queued.values() if count > 1)
    return Outcome(lost, doubled)


@dataclass
class Figures:
    """What one fault cost, as the issue asks it to be reported."""

    fault: str
    acknowledged: int
    lost: int
    duplicated: int
    refused: dict[str, int]
    """Requests sent during the fault and not answered 2xx, by kind and status (``none``: no
    answer), such as ``webhook 503``."""
    spooled: int
    longest_s: float
    """The longest request sent during the fault."""
    ready_after_s: float
    """From the fault's end to /ready 200 on every live server."""
    extra: dict[str, Any] = field(default_factory=dict)

    def report(self) -> None:
        """Print the figures; append them to ``$FAULT_FIGURES_FILE`` when it is set."""
        line = json.dumps(asdict(self))
        sys.stdout.write(f"fault figures: {line}\n")
        target = os.environ.get(FIGURES_FILE)
        if target:
            with Path(target).open("a", encoding="utf-8") as sink:
                sink.write(line + "\n")


def figures(
    fault: str, answers: list[Answer], outcome: Outcome, window: tuple[float, float],
    ready_after_s: float, **extra: Any,
) -> Figures:  # fmt: skip
    """The figures of ``fault`` from the load's answers; ``window`` is the fault (monotonic)."""
    start, end = window
    during = [a for a in answers if start <= a.sent <= end]
    refused = Counter(f"{a.kind} {'none' if a.status is None else a.status}"
                      for a in during if not a.acknowledged)  # fmt: skip
    return Figures(
        fault=fault,
        acknowledged=sum(1 for a in answers if a.kind == "webhook" and a.acknowledged),
        lost=len(outcome.lost),
        duplicated=outcome.duplicated,
        refused=dict(refused),
        spooled=sum(1 for a in answers if a.spooled),
        longest_s=round(max((a.seconds for a in during), default=0.0), 3),
        ready_after_s=ready_after_s,
        extra=extra,
    )


class ThreadedForge:
    """A `ForgeDouble` (Gitea) served from a thread of its own, for the synchronous fault tests."""

    def __init__(self, token: str, repos: set[str]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.double = ForgeDouble("gitea", token, repos)
        asyncio.run_coroutine_threadsafe(self.double.start(), self._loop).result(10)

    @property
    def url(self) -> str:
        """The API URL the servers are configured with."""
        return self.double.url

    def posted(self, repo: str, commit: str) -> list[str]:
        """Every state posted for ``commit`` of ``repo``, in order."""
        return [s.state for s in list(self.double.statuses) if (s.repo, s.sha) == (repo, commit)]

    def stop(self) -> None:
        """Stop serving and end the thread."""
        asyncio.run_coroutine_threadsafe(self.double.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
