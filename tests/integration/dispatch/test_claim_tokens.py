"""Claim tokens (`dispatch.mode: kubernetes`): each agent Job's Secret, and the server's claim.

The dispatcher mints each agent Job a claim token into a Secret the Job owns; the whole app (in
kubernetes mode, on the API double) accepts that token for the claim of exactly its job and
attempt and for nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from lightkube import KubeConfig

from raibid_api.api.deps import AppState
from raibid_api.app import create_app
from raibid_api.dispatch.cluster import LightkubeClusterApi
from raibid_api.dispatch.manifests import agent_job_name
from raibid_api.embedded import EmbeddedRedis
from raibid_api.jobs.claim_tokens import ClaimGrant, mint_claim_token, verify_claim_token
from tests.support.dispatch import CLAIM_KEY, DispatcherFactory, base_settings, trigger
from tests.support.kube_double import KubeDouble
from tests.support.polling import eventually


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_each_agent_job_gets_a_secret_it_owns_with_the_claim_token_of_its_attempt(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    ids = await trigger(state, 2)
    await dispatcher_for().dispatch_once()
    for job_id in ids:
        name = agent_job_name(job_id, 1)
        secret = kube.secrets[("ci", name)]
        owners = secret["metadata"]["ownerReferences"]
        assert owners == [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                           "uid": kube.job(name)["metadata"]["uid"]}]  # fmt: skip
        grant = verify_claim_token(CLAIM_KEY, kube.secret_value(name))
        assert grant == ClaimGrant(job_id, 1)


async def test_deleting_an_agent_job_deletes_its_secret_with_it(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory, kubeconfig: Path
) -> None:
    [job_id] = await trigger(state)
    await dispatcher_for().dispatch_once()
    name = agent_job_name(job_id, 1)
    assert ("ci", name) in kube.secrets
    api = LightkubeClusterApi.connect("ci", KubeConfig.from_file(kubeconfig))
    try:
        await api.delete_job(name)
    finally:
        await api.close()
    assert kube.job_names() == []
    assert ("ci", name) not in kube.secrets


async def test_a_job_left_without_its_secret_gets_it_on_the_next_pass_of_any_replica(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    [job_id] = await trigger(state)
    await dispatcher_for().dispatch_once()
    name = agent_job_name(job_id, 1)
    token = kube.secret_value(name)
    del kube.secrets[("ci", name)]  # as if the creating replica stopped between the two calls
    restarted = dispatcher_for()
    result = await restarted.dispatch_once()
    assert result.created == []
    assert kube.job_names() == [name]
    assert kube.secret_value(name) == token
    posts = sum(1 for method, *_ in kube.requests if method == "POST")
    await restarted.dispatch_once()
    assert sum(1 for method, *_ in kube.requests if method == "POST") == posts


@pytest.fixture
async def kubernetes_app(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path, kube: KubeDouble,
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:  # fmt: skip
    """The whole app in kubernetes mode with one waiting job's agent Job created; (client, id)."""
    queued = create_app(base_settings(redis_server.url, prefix, tmp_path))
    async with queued.router.lifespan_context(queued):
        [job_id] = await trigger(queued.state.raibid)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    settings = base_settings(redis_server.url, prefix, tmp_path, dispatch={"mode": "kubernetes"})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        name = agent_job_name(job_id, 1)
        await eventually(lambda: ("ci", name) in kube.secrets, 5, "the agent Job's Secret")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://raibid.test") as client:
            yield client, job_id


async def test_the_pod_s_claim_token_claims_its_own_job_once_and_nothing_else(
    kubernetes_app: tuple[httpx.AsyncClient, str], kube: KubeDouble
) -> None:
    client, job_id = kubernetes_app
    name = agent_job_name(job_id, 1)
    token = kube.secret_value(name)
    body = {"agent_id": name, "wait": 0}

    claimed = await client.post("/agent/claim", json=body, headers=bearer(token))
    assert claimed.status_code == 200
    assert claimed.json()["job"]["id"] == job_id
    assert claimed.json()["job"]["attempt"] == 1
    job_token = claimed.json()["token"]
    beat = await client.post(f"/agent/jobs/{job_id}/heartbeat", headers=bearer(job_token))
    assert beat.status_code == 200

    again = await client.post("/agent/claim", json=body, headers=bearer(token))
    assert again.status_code == 204  # its attempt runs: the token is spent
    for route in (f"/agent/jobs/{job_id}/heartbeat", f"/agent/jobs/{job_id}/complete"):
        refused = await client.post(route, json={"status": "success"}, headers=bearer(token))
        assert refused.status_code == 401
    write = await client.post("/jobs", json={}, headers=bearer(token))
    assert write.status_code == 403


async def test_a_claim_token_not_signed_by_the_cluster_s_key_is_refused(
    kubernetes_app: tuple[httpx.AsyncClient, str], kube: KubeDouble
) -> None:
    client, job_id = kubernetes_app
    genuine = kube.secret_value(agent_job_name(job_id, 1))
    forged = [
        mint_claim_token(CLAIM_KEY, job_id, 1),  # another key
        genuine.replace(".1.", ".2.", 1),  # another attempt, same signature
        genuine[:-1] + ("0" if genuine[-1] != "0" else "1"),
        "rjc1.not-a-job.1.00",
    ]
    for token in forged:
        answer = await client.post(
            "/agent/claim", json={"agent_id": "thief", "wait": 0}, headers=bearer(token)
        )
        assert answer.status_code == 401, token
        assert answer.json()["error"]
