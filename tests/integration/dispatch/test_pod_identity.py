"""``dispatch.mode: keda``: agent pods claim with their ServiceAccount token, one job per pod.

The whole app runs in keda mode against the Kubernetes API double, whose TokenReview endpoint
vouches for the tokens it issued to its pods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from raibid_api.app import create_app
from raibid_api.embedded import EmbeddedRedis
from raibid_api.errors import ConfigError
from tests.support.dispatch import base_settings, trigger
from tests.support.kube_double import KubeDouble

AUDIENCE = "raibid-api"


async def claim(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/agent/claim", json={"agent_id": "pod-agent", "wait": 0},
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip


@pytest.fixture
async def keda_app(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path, kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:  # fmt: skip
    """The app in keda mode with two waiting jobs; (client, their ids)."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    app = create_app(base_settings(redis_server.url, prefix, tmp_path, dispatch={"mode": "keda"}))
    async with app.router.lifespan_context(app):
        ids = await trigger(app.state.raibid, 2)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://raibid.test") as client:
            yield client, ids


async def test_a_pod_s_token_claims_one_job_and_never_a_second(
    keda_app: tuple[httpx.AsyncClient, list[str]], kube: KubeDouble
) -> None:
    client, ids = keda_app
    token = kube.issue_pod_token(kube.add_pod("raibid-agent-x7k2p-abcde"), AUDIENCE)

    first = await claim(client, token)
    assert first.status_code == 200, first.text
    assert first.json()["job"]["id"] == ids[0]
    again = await claim(client, token)
    assert again.status_code == 204  # another job waits, but this pod had its one

    other = kube.issue_pod_token(kube.add_pod("raibid-agent-x7k2p-fghij"), AUDIENCE)
    second = await claim(client, other)
    assert second.json()["job"]["id"] == ids[1]
    reviews = [r for r in kube.requests if r[1].endswith("/tokenreviews")]
    assert len(reviews) == 3


async def test_a_pod_that_found_no_job_may_claim_again(
    keda_app: tuple[httpx.AsyncClient, list[str]], kube: KubeDouble, redis_server: EmbeddedRedis,
    prefix: str, tmp_path: Path,
) -> None:  # fmt: skip
    client, ids = keda_app
    for n in range(len(ids)):
        busy = kube.issue_pod_token(kube.add_pod(f"busy-{n}"), AUDIENCE)
        assert (await claim(client, busy)).status_code == 200
    late = kube.issue_pod_token(kube.add_pod("late"), AUDIENCE)
    assert (await claim(client, late)).status_code == 204
    other = create_app(base_settings(redis_server.url, prefix, tmp_path))
    async with other.router.lifespan_context(other):
        [new] = await trigger(other.state.raibid)
    claimed = await claim(client, late)
    assert claimed.status_code == 200
    assert claimed.json()["job"]["id"] == new


async def test_tokens_kubernetes_does_not_vouch_for_as_an_agent_pod_are_refused(
    keda_app: tuple[httpx.AsyncClient, list[str]], kube: KubeDouble
) -> None:
    client, _ = keda_app
    gone = kube.add_pod("gone")
    gone_token = kube.issue_pod_token(gone, AUDIENCE)
    del kube.pods[("ci", "gone")]
    refused = {
        "deleted pod": gone_token,
        "other audience": kube.issue_pod_token(
            kube.add_pod("api"), "https://kubernetes.default.svc"
        ),
        "other account": kube.issue_pod_token(kube.add_pod("web", "default"), AUDIENCE),
        "never issued": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
    }
    for why, token in refused.items():
        answer = await claim(client, token)
        assert answer.status_code == 401, why
        assert answer.json()["error"], why


async def test_a_claim_the_api_cannot_review_answers_503_and_claims_nothing(
    keda_app: tuple[httpx.AsyncClient, list[str]], kube: KubeDouble
) -> None:
    client, ids = keda_app
    token = kube.issue_pod_token(kube.add_pod("p"), AUDIENCE)
    kube.forbidden = True
    answer = await claim(client, token)
    assert answer.status_code == 503
    assert answer.json()["error"]
    kube.forbidden = False
    claimed = await claim(client, token)
    assert claimed.json()["job"]["id"] == ids[0]


async def test_keda_mode_without_kubernetes_credentials_refuses_to_start(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    app = create_app(base_settings(redis_server.url, prefix, tmp_path, dispatch={"mode": "keda"}))
    with pytest.raises(ConfigError, match="keda needs Kubernetes credentials"):
        async with app.router.lifespan_context(app):
            pass
