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
from collections.abc import AsyncIterator

import httpx
import pytest

from raibid_api.embedded import EmbeddedRedis
from tests.support.agent_harness import WRITE
from tests.support.kube_e2e import (
    Cluster,
    agent_job,
    cluster_in_a_folder,
    ended,
    job_of,
    log_of,
    make_repository,
    push,
)
from tests.support.kube_pods import give_to_pods, world_readable_folder
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
async def cluster(
    redis_server: EmbeddedRedis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    async with cluster_in_a_folder(redis_server.url, prefix, "kubernetes", monkeypatch) as found:
        yield found


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
