"""The lightkube-backed `ClusterApi` against the API server double, and the double's own answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.resources.batch_v1 import Job

from raibid_api.config import load_settings
from raibid_api.dispatch.cluster import LightkubeClusterApi
from raibid_api.dispatch.manifests import AGENT_SELECTOR, AgentJobTemplate, agent_job
from raibid_api.errors import ConfigError, ServiceUnavailableError
from tests.support.kube_double import KubeDouble, closed_port

JOB_IDS = [
    "3f2a9c1e-7b4d-4c55-8e0f-0123456789ab",
    "9b1c2d3e-4f50-4a6b-8c7d-0123456789ab",
    "a1b2c3d4-e5f6-4071-8293-0123456789ab",
]
TEMPLATE = AgentJobTemplate.from_settings(load_settings(None, dispatch={"mode": "kubernetes"}))


@pytest.fixture
async def api(kubeconfig: Path) -> AsyncIterator[LightkubeClusterApi]:
    cluster = LightkubeClusterApi.connect("ci", KubeConfig.from_file(kubeconfig))
    yield cluster
    await cluster.close()


async def test_create_answers_the_uid_then_none_when_the_name_exists(
    api: LightkubeClusterApi, kube: KubeDouble
) -> None:
    body = agent_job(TEMPLATE, JOB_IDS[0], 1)
    uid = await api.create_job(body)
    assert await api.create_job(body) is None
    assert kube.job_names() == [body["metadata"]["name"]]
    assert uid == kube.job(body["metadata"]["name"])["metadata"]["uid"]
    posts = [r for r in kube.requests if r[0] == "POST"]
    assert [path for _, path, _ in posts] == ["/apis/batch/v1/namespaces/ci/jobs"] * 2


async def test_list_follows_continue_tokens_and_filters_by_label(
    kubeconfig: Path, api: LightkubeClusterApi, kube: KubeDouble
) -> None:
    for job_id in JOB_IDS:
        await api.create_job(agent_job(TEMPLATE, job_id, 1))
    stranger = agent_job(TEMPLATE, JOB_IDS[0], 2)
    stranger["metadata"]["labels"] = {"app.kubernetes.io/name": "something-else"}
    await api.create_job(stranger)
    client = AsyncClient(KubeConfig.from_file(kubeconfig))
    try:
        listing = client.list(Job, namespace="ci", labels=dict(AGENT_SELECTOR), chunk_size=2)
        names = [str(job.metadata.name) async for job in listing if job.metadata]
    finally:
        await client.close()
    assert sorted(names) == [n for n in kube.job_names() if n.endswith("-1")]
    pages = [query for method, _, query in kube.requests if method == "GET" and "limit" in query]
    assert [page.get("continue") for page in pages] == [None, "2"]
    assert len(await api.list_jobs(AGENT_SELECTOR)) == 3


async def test_delete_removes_the_job_and_its_pods_and_tolerates_a_missing_one(
    api: LightkubeClusterApi, kube: KubeDouble
) -> None:
    body = agent_job(TEMPLATE, JOB_IDS[0], 1)
    await api.create_job(body)
    kube.run_pod(body["metadata"]["name"], {"running": {"startedAt": "2026-03-01T12:00:00Z"}})
    await api.delete_job(body["metadata"]["name"])
    await api.delete_job(body["metadata"]["name"])  # another replica was first: fine
    assert kube.jobs == {}
    assert kube.pods == {}  # background propagation, not the API's orphaning default


async def test_double_orphans_pods_when_a_job_is_deleted_without_a_propagation_policy(
    kube: KubeDouble, api: LightkubeClusterApi
) -> None:
    body = agent_job(TEMPLATE, JOB_IDS[0], 1)
    await api.create_job(body)
    kube.run_pod(body["metadata"]["name"], {"waiting": {"reason": "ContainerCreating"}})
    url = (
        f"http://127.0.0.1:{kube.port}/apis/batch/v1/namespaces/ci/jobs/{body['metadata']['name']}"
    )
    async with httpx.AsyncClient() as raw:
        answer = await raw.delete(url, headers={"Authorization": f"Bearer {kube.token}"})
    assert answer.json()["status"] == "Success"
    assert len(kube.pods) == 1


async def test_invalid_body_is_refused_with_the_api_status_reason(api: LightkubeClusterApi) -> None:
    body = agent_job(TEMPLATE, JOB_IDS[0], 1)
    body["metadata"]["name"] = "Raibid_Agent"
    with pytest.raises(ServiceUnavailableError, match="422 Invalid"):
        await api.create_job(body)


async def test_double_answers_errors_as_kubernetes_status_objects(kube: KubeDouble) -> None:
    base = f"http://127.0.0.1:{kube.port}/apis/batch/v1/namespaces/ci/jobs"
    auth = {"Authorization": f"Bearer {kube.token}"}
    async with httpx.AsyncClient() as raw:
        missing = await raw.get(f"{base}/nope", headers=auth)
        anonymous = await raw.get(base)
        created = await raw.post(base, headers=auth, json=agent_job(TEMPLATE, JOB_IDS[0], 1))
        again = await raw.post(base, headers=auth, json=agent_job(TEMPLATE, JOB_IDS[0], 1))
    assert missing.status_code == 404
    assert missing.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'jobs.batch "nope" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "nope", "group": "batch", "kind": "jobs"},
    }
    assert (anonymous.status_code, anonymous.json()["reason"]) == (401, "Unauthorized")
    assert created.status_code == 201
    assert created.json()["metadata"]["uid"]
    assert created.json()["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"]
    assert (again.status_code, again.json()["reason"]) == (409, "AlreadyExists")
    assert missing.headers["content-type"] == "application/json"


async def test_refusal_by_rbac_is_service_unavailable_naming_the_status(
    api: LightkubeClusterApi, kube: KubeDouble
) -> None:
    kube.forbidden = True
    with pytest.raises(ServiceUnavailableError, match="403 Forbidden"):
        await api.ping()
    with pytest.raises(ServiceUnavailableError, match="403 Forbidden"):
        await api.list_jobs(AGENT_SELECTOR)


async def test_wrong_token_is_refused(kube: KubeDouble, tmp_path: Path) -> None:
    config = kube.kubeconfig(tmp_path / "wrong", token="not-the-token")
    api = LightkubeClusterApi.connect("ci", KubeConfig.from_file(config))
    try:
        with pytest.raises(ServiceUnavailableError, match="401 Unauthorized"):
            await api.ping()
    finally:
        await api.close()


async def test_unreachable_api_is_service_unavailable(kube: KubeDouble, tmp_path: Path) -> None:
    config = kube.kubeconfig(tmp_path / "closed", port=closed_port())
    api = LightkubeClusterApi.connect("ci", KubeConfig.from_file(config))
    try:
        with pytest.raises(ServiceUnavailableError, match="did not answer"):
            await api.ping()
    finally:
        await api.close()


def test_missing_credentials_are_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(ConfigError) as raised:
        LightkubeClusterApi.connect("ci")
    assert "dispatch.mode" in raised.value.problems[0]


async def test_double_refuses_a_job_the_official_schema_rejects(kube: KubeDouble) -> None:
    body = agent_job(TEMPLATE, JOB_IDS[0], 1)
    body["spec"]["template"]["spec"]["enableServiceLink"] = False
    url = f"http://127.0.0.1:{kube.port}/apis/batch/v1/namespaces/ci/jobs"
    async with httpx.AsyncClient() as raw:
        answer = await raw.post(url, headers={"Authorization": f"Bearer {kube.token}"}, json=body)
    assert (answer.status_code, answer.json()["reason"]) == (422, "Invalid")
    assert kube.jobs == {}
