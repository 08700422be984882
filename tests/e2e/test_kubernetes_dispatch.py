"""``dispatch.mode: kubernetes`` end to end: webhook, agent Job, the real agent in its "pod".

The servers are real `raibid-api serve` processes on the session's redis-server; the cluster is
the Kubernetes API double (tests/support/kube_double.py), and `PodHost` plays the kubelet: it runs
each agent Job's pod as the real `raibid-api agent` process with the pod's arguments, volumes and
claim token (tests/support/kube_pods.py). Kubernetes itself cannot run here.

The dispatcher lists rather than watches: a dropped connection to the API is a skipped pass, and
the next pass sees whatever changed meanwhile (`test_a_pod_oom_killed_while_the_api_is_away...`).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from raibid_api.dispatch.manifests import agent_job_name
from raibid_api.embedded import EmbeddedRedis, free_port
from tests.support.agent_harness import WRITE, Process, pipeline, spawn, write_config
from tests.support.git_remote import make_remote
from tests.support.kube_double import KubeDouble
from tests.support.kube_pods import PodHost, give_to_pods, world_readable_folder
from tests.support.polling import eventually
from tests.support.webhook_deliveries import headers_for, push_body
from tests.support.webhook_samples import SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LEASE = "3s"
# What a build step runs to look for any claim token where a step can look: its environment,
# every /proc/<pid>/environ and cmdline it may read, and the files under the folders it names
# (bounded). It prints a JSON report and fails when it finds one.
SCANNER = r"""
import json, os, re, sys
PATTERN = re.compile(rb"rjc1\.[0-9a-f-]{36}\.[0-9]+\.[0-9a-f]{64}")
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


@pytest.fixture
async def cluster(
    redis_server: EmbeddedRedis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    # not under pytest's own tmp folders, which only root may enter: the pods run as nobody
    with tempfile.TemporaryDirectory(prefix="raibid-kube-e2e-") as folder:
        base = world_readable_folder(Path(folder))
        async with KubeDouble().serving() as kube:
            monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig(base / "kubeconfig")))
            config = {
                "redis": {"url": redis_server.url, "key_prefix": prefix},
                "webhooks": {"gitea": {"secret": SECRET}, "spool_dir": str(base / "spool")},
                "jobs": {"lease": LEASE, "reaper_interval": "500ms", "max_attempts": 3},
                "dispatch": {"mode": "kubernetes",
                             "kubernetes": {"image": "raibid-api:test", "node_selector": {}}},
            }  # fmt: skip
            found = Cluster(kube, PodHost(kube, "", base / "pods"), base, config, [])
            try:
                found.pods.server_url = await found.start_server()
                yield found
            finally:
                found.pods.stop_all()
                for process, _ in found.servers:
                    process.stop(timeout=15)


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


async def test_a_push_runs_in_its_agent_job_s_pod_and_no_step_finds_a_token(
    cluster: Cluster,
) -> None:
    url = cluster.pods.server_url
    roots = f"{cluster.pods.base} $HOME $TMPDIR /tmp"
    clone_url, commit = make_repository(
        cluster, "ok", [{"name": "scan", "run": f"python3 scan.py {roots}"}]
    )
    job_id = await push(url, clone_url, commit, "main")
    name = await agent_job(cluster, job_id, 1)
    pod = cluster.pods.start(name)

    await eventually(lambda: pod.process.poll() is not None, 60, "the agent to exit")
    assert pod.report() == 0, cluster.output()
    job = await job_of(url, job_id)
    assert (job["status"], job["attempt"], job["agent_id"]) == ("success", 1, name), job
    (line,) = [line for line in (await log_of(url, job_id)).splitlines() if "SCAN " in line]
    report = json.loads(line.split("SCAN ", 1)[1])
    assert report["found"] == []
    assert report["scanned"] > 10
    assert set(report["agents"].values()) == {"refused"}, report  # the agent runs, hidden


async def test_a_pod_oom_killed_while_the_api_is_away_is_seen_and_its_job_gets_attempt_2(
    cluster: Cluster,
) -> None:
    url = cluster.pods.server_url
    shared = world_readable_folder(cluster.base / "shared")
    give_to_pods(shared)
    first = f"if [ -e {shared}/ran ]; then exit 0; fi; touch {shared}/ran; sleep 120"
    clone_url, commit = make_repository(cluster, "oom", [{"name": "big", "run": first}])
    job_id = await push(url, clone_url, commit, "oom")
    name = await agent_job(cluster, job_id, 1)
    token = cluster.kube.secret_value(name)
    pod = cluster.pods.start(name)
    await eventually(lambda: (shared / "ran").exists(), 60, "the first attempt's step")

    cluster.kube.forbidden = True  # the API goes away: passes are skipped meanwhile
    pod.oom_kill()
    pod.report("OOMKilled")
    await eventually(lambda: "dispatch pass skipped" in cluster.output(), 30, "a skipped pass")
    cluster.kube.forbidden = False

    retry = await agent_job(cluster, job_id, 2)
    await eventually(lambda: "OOMKilled" in cluster.output(), 30, "the OOM kill to be reported")
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        stale = await http.post("/agent/claim", json={"agent_id": "x", "wait": 0},
                                headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert stale.status_code == 204  # attempt 1's token claims nothing any more
    second = cluster.pods.start(retry)
    await eventually(lambda: second.process.poll() is not None, 60, "the second agent to exit")
    assert second.report() == 0, cluster.output()
    job = await ended(url, job_id)
    assert (job["status"], job["attempt"], job["agent_id"]) == ("success", 2, retry)


async def test_cancelling_a_running_job_deletes_its_agent_job_in_the_background(
    cluster: Cluster,
) -> None:
    url = cluster.pods.server_url
    shared = world_readable_folder(cluster.base / "shared-cancel")
    give_to_pods(shared)
    run = f"touch {shared}/started; sleep 120"
    clone_url, commit = make_repository(cluster, "cancel", [{"name": "long", "run": run}])
    job_id = await push(url, clone_url, commit, "cancel")
    name = await agent_job(cluster, job_id, 1)
    pod = cluster.pods.start(name)
    await eventually(lambda: (shared / "started").exists(), 60, "the step to start")

    async with httpx.AsyncClient(base_url=url, headers=WRITE, timeout=10.0) as http:
        assert (await http.post(f"/jobs/{job_id}/cancel")).status_code == 200

    await eventually(lambda: name not in cluster.kube.job_names(), 30, "the Job's deletion")
    deletes = [query for method, path, query in cluster.kube.requests
               if method == "DELETE" and path.endswith(f"/jobs/{name}")]  # fmt: skip
    assert deletes
    assert all(q.get("propagationPolicy") == "Background" for q in deletes)
    assert ("ci", pod.pod["metadata"]["name"]) not in cluster.kube.pods
    assert ("ci", name) not in cluster.kube.secrets
    pod.stop()  # the kubelet ends the deleted pod's processes
    assert (await job_of(url, job_id))["status"] == "cancelled"


async def test_a_restarted_dispatcher_and_a_second_one_create_no_second_job_per_attempt(
    cluster: Cluster,
) -> None:
    url = cluster.pods.server_url
    clone_url, commit = make_repository(cluster, "many", [{"name": "ok", "run": "true"}])
    ids = [await push(url, clone_url, commit, f"b{n}") for n in range(3)]
    names = sorted([await agent_job(cluster, job_id, 1) for job_id in ids])

    cluster.stop_server(url)
    restarted = await cluster.start_server()
    second = await cluster.start_server()
    await cluster.passes(4)
    assert cluster.kube.job_names() == names
    assert sorted(name for _, name in cluster.kube.secrets) == names

    cluster.pods.server_url = second
    pods = [cluster.pods.start(name) for name in names]
    await eventually(
        lambda: all(pod.process.poll() is not None for pod in pods), 90, "the agents to exit"
    )
    assert [pod.report() for pod in pods] == [0, 0, 0], cluster.output()
    for job_id in ids:
        job = await ended(restarted, job_id)
        assert (job["status"], job["attempt"]) == ("success", 1)
    await cluster.passes(2)
    assert [n for n in cluster.kube.job_names() if n.endswith("-2")] == []
