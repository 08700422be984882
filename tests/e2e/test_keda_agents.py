"""``dispatch.mode: keda`` end to end: an agent pod claims with its own ServiceAccount token.

KEDA is played by the test: it creates the agent Job from the ScaledJob in deploy/ (its
``jobTargetRef``) through the Kubernetes API double, as KEDA's operator would. `PodHost` runs the
pod with the projected token the kubelet would mount; the real server reviews it with the
double's TokenReview API. Neither Kubernetes nor KEDA can run here.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from raibid_api.embedded import EmbeddedRedis
from tests.support.kube_double import KubeDouble
from tests.support.kube_e2e import (
    Cluster,
    cluster_in_a_folder,
    job_of,
    log_of,
    make_repository,
    push,
)
from tests.support.manifests import KUBERNETES, find, target_manifests
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SCALED_JOB = find(target_manifests(KUBERNETES / "overlays/keda"), "ScaledJob", "raibid-agent")


@pytest.fixture
async def cluster(
    redis_server: EmbeddedRedis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    async with cluster_in_a_folder(redis_server.url, prefix, "keda", monkeypatch) as found:
        yield found


async def keda_creates_an_agent_job(kube: KubeDouble) -> str:
    """POST the ScaledJob's Job, as KEDA's operator does when the queue grows; its name."""
    name = f"raibid-agent-{secrets.token_hex(3)}"
    target = SCALED_JOB["spec"]["jobTargetRef"]
    body = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "ci",
                         "labels": dict(target["template"]["metadata"]["labels"])},
            "spec": target}  # fmt: skip
    headers = {"Authorization": f"Bearer {kube.token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{kube.port}") as http:
        answer = await http.post("/apis/batch/v1/namespaces/ci/jobs", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return name


async def test_a_keda_agent_pod_builds_one_job_with_its_pod_token_which_no_step_finds(
    cluster: Cluster,
) -> None:
    url = cluster.pods.server_url
    roots = f"{cluster.pods.base} $HOME $TMPDIR /tmp"
    clone_url, commit = make_repository(
        cluster, "keda", [{"name": "scan", "run": f"python3 scan.py {roots}"}]
    )
    job_id = await push(url, clone_url, commit, "main")
    await push(url, clone_url, commit, "second")  # another job waits for another pod
    pod = cluster.pods.start(await keda_creates_an_agent_job(cluster.kube))

    await eventually(lambda: pod.process.poll() is not None, 60, "the agent to exit")
    assert pod.report() == 0, cluster.output()
    job = await job_of(url, job_id)
    assert job["status"] == "success", cluster.output()
    (line,) = [line for line in (await log_of(url, job_id)).splitlines() if "SCAN " in line]
    report = json.loads(line.split("SCAN ", 1)[1])
    assert report["found"] == []
    assert set(report["agents"].values()) == {"refused"}, report

    # the pod's token, had a step taken it, claims nothing more: not while the pod lives...
    (token,) = cluster.kube.pod_tokens
    headers = {"Authorization": f"Bearer {token}"}
    body = {"agent_id": "thief", "wait": 0}
    async with httpx.AsyncClient(base_url=url, timeout=10.0, headers=headers) as http:
        assert (await http.post("/agent/claim", json=body)).status_code == 204
        # ...nor once it is gone
        del cluster.kube.pods[("ci", pod.pod["metadata"]["name"])]
        assert (await http.post("/agent/claim", json=body)).status_code == 401
