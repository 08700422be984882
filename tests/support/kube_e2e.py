"""The pieces of the Kubernetes end-to-end tests: servers on the API double, pods, repositories.

`Cluster` holds the Kubernetes API double, the `PodHost` that runs agent pods as real processes,
and the real `raibid-api serve` processes (in ``dispatch.mode`` kubernetes or keda) on the
session's redis-server. `SCANNER` is what a build step runs to look for credentials.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from raibid_api.dispatch.manifests import agent_job_name
from raibid_api.embedded import free_port
from tests.support.agent_harness import WRITE, Process, pipeline, spawn, write_config
from tests.support.git_remote import make_remote
from tests.support.kube_double import KubeDouble
from tests.support.kube_pods import PodHost, give_to_pods, world_readable_folder
from tests.support.polling import eventually
from tests.support.webhook_deliveries import headers_for, push_body
from tests.support.webhook_samples import SECRET

LEASE = "3s"
# What a build step runs to look for any claim token or ServiceAccount token (a JWT signed
# RS256, as Kubernetes signs them) where a step can look: its environment,
# every /proc/<pid>/environ and cmdline it may read, and the files under the folders it names
# (bounded). It prints a JSON report and fails when it finds one.
SCANNER = r"""
import json, os, re, sys
PATTERN = re.compile(rb"rjc1\.[0-9a-f-]{36}\.[0-9]+\.[0-9a-f]{64}"
                     rb"|eyJhbGciOiJSUzI1Ni[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{20,}")
found, scanned, agents = [], 0, {}
def scan(where, data):
    global scanned
    scanned += 1
    if PATTERN.search(data):
        found.append(where)
scan("os.environ", "\n".join(f"{k}={v}" for k, v in os.environ.items()).encode())
for pid in filter(str.isdigit, os.listdir("/proc")):
    for name in ("environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as file:
                data = file.read()
        except OSError as exc:
            data = None
        if data is not None:
            scan(f"/proc/{pid}/{name}", data)
        if name == "environ":
            try:
                command = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"raibid_api\x00agent\x00" in command:
                agents[pid] = "readable" if data is not None else "refused"
budget = 20000
for root in sys.argv[1:]:
    for folder, _, files in os.walk(root):
        for name in files:
            budget -= 1
            if budget < 0:
                break
            try:
                with open(os.path.join(folder, name), "rb") as file:
                    scan(os.path.join(folder, name), file.read(1 << 20))
            except OSError:
                pass
print("SCAN " + json.dumps({"found": found, "scanned": scanned, "agents": agents,
                            "uid": os.getuid()}))
sys.exit(1 if found else 0)
"""


@dataclass
class Cluster:
    """The API double, the pods' host, the folder everything lives in, and the servers."""

    kube: KubeDouble
    pods: PodHost
    base: Path
    config: dict[str, Any]
    servers: list[tuple[Process, str]]

    async def start_server(self) -> str:
        """One more `raibid-api serve` in kubernetes mode on the shared Redis; its URL."""
        port = free_port()
        folder = self.base / f"server-{port}"
        folder.mkdir()
        path = write_config(folder, port, **self.config)
        process = spawn([sys.executable, "-m", "raibid_api", "serve", "--config", str(path)],
                        folder / "server.log", folder)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        self.servers.append((process, url))

        async def healthy() -> bool:
            assert process.popen.poll() is None, process.output()
            try:
                async with httpx.AsyncClient(base_url=url, timeout=1.0) as http:
                    return (await http.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(healthy, 30, "the server to be ready")
        return url

    def stop_server(self, url: str) -> None:
        """Stop the server at ``url``."""
        for process, known in self.servers:
            if known == url:
                process.stop(timeout=15)

    def output(self) -> str:
        """Every server's and pod's output, for a failure message."""
        parts = [f"--- server {url}\n{process.output()}" for process, url in self.servers]
        return "\n".join([*parts, self.pods.diagnostics()])

    async def passes(self, count: int) -> None:
        """Wait until the dispatchers listed Jobs ``count`` more times (their passes)."""

        def lists() -> int:
            return sum(1 for method, path, _ in self.kube.requests
                       if method == "GET" and path.endswith("/jobs"))  # fmt: skip

        target = lists() + count
        await eventually(lambda: lists() >= target, 30, f"{count} dispatcher passes")


def make_repository(cluster: Cluster, name: str, steps: list[dict[str, Any]]) -> tuple[str, str]:
    """A repository the pods may clone, building ``steps``; (clone URL, commit)."""
    remote = make_remote(cluster.base / "forges" / name)
    files = pipeline(*steps) | {"scan.py": SCANNER}
    commit = remote.commit(files)
    give_to_pods(cluster.base / "forges" / name)
    return remote.url, commit


async def push(url: str, clone_url: str, commit: str, branch: str) -> str:
    """A signed Gitea push delivery of ``commit``; the job's id."""
    payload = json.loads(push_body(commit, branch=branch, repo="acme/widgets"))
    payload["repository"]["clone_url"] = clone_url
    body = json.dumps(payload).encode()
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        answer = await http.post("/webhook/gitea", content=body, headers=headers_for(body))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


async def job_of(url: str, job_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, headers=WRITE, timeout=10.0) as http:
        job: dict[str, Any] = (await http.get(f"/jobs/{job_id}")).json()
        return job


async def log_of(url: str, job_id: str) -> str:
    async with httpx.AsyncClient(base_url=url, headers=WRITE, timeout=10.0) as http:
        return (await http.get(f"/jobs/{job_id}/logs")).text


async def ended(url: str, job_id: str, within: float = 60) -> dict[str, Any]:
    async def done() -> bool:
        return (await job_of(url, job_id))["status"] in ("success", "failed", "cancelled")

    await eventually(done, within, f"job {job_id} to end")
    return await job_of(url, job_id)


async def agent_job(cluster: Cluster, job_id: str, attempt: int) -> str:
    """The name of the agent Job for that attempt, once it and its Secret exist."""
    name = agent_job_name(job_id, attempt)
    await eventually(lambda: ("ci", name) in cluster.kube.secrets, 30, f"the Job {name}")
    return name


def cluster_config(redis_url: str, prefix: str, base: Path, mode: str) -> dict[str, Any]:
    """The sections of every server's configuration in ``mode`` (kubernetes or keda)."""
    return {
        "redis": {"url": redis_url, "key_prefix": prefix},
        "webhooks": {"gitea": {"secret": SECRET}, "spool_dir": str(base / "spool")},
        "jobs": {"lease": LEASE, "reaper_interval": "500ms", "max_attempts": 3},
        "dispatch": {"mode": mode,
                     "kubernetes": {"image": "raibid-api:test", "node_selector": {}}},
    }  # fmt: skip


@asynccontextmanager
async def running_cluster(
    kube: KubeDouble, base: Path, config: dict[str, Any]
) -> AsyncIterator[Cluster]:
    """A `Cluster` with one server started, everything stopped when the block ends.

    ``KUBECONFIG`` must name the double already: the servers inherit it.
    """
    found = Cluster(kube, PodHost(kube, "", base / "pods"), base, config, [])
    try:
        found.pods.server_url = await found.start_server()
        yield found
    finally:
        found.pods.stop_all()
        for process, _ in found.servers:
            process.stop(timeout=15)


@asynccontextmanager
async def cluster_in_a_folder(
    redis_url: str, prefix: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    """`running_cluster` in ``mode`` (kubernetes or keda) against a fresh API double.

    Everything lives in a temporary folder the pods (run as nobody) may enter, not under
    pytest's own tmp folders, which only root may; `KUBECONFIG` names the double meanwhile.
    """
    with tempfile.TemporaryDirectory(prefix=f"raibid-{mode}-e2e-") as folder:
        base = world_readable_folder(Path(folder))
        async with KubeDouble().serving() as kube:
            monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig(base / "kubeconfig")))
            config = cluster_config(redis_url, prefix, base, mode)
            async with running_cluster(kube, base, config) as found:
                yield found
