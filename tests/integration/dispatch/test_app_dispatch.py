"""``dispatch.mode: kubernetes`` in the whole app: its loop starts, /ready checks the API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from raibid_api.app import create_app
from raibid_api.config import Settings
from raibid_api.dispatch.manifests import agent_job_name
from raibid_api.embedded import EmbeddedRedis
from raibid_api.errors import ConfigError
from tests.support.dispatch import base_settings, trigger
from tests.support.kube_double import KubeDouble, closed_port
from tests.support.polling import eventually


def kubernetes_mode(redis_server: EmbeddedRedis, prefix: str, tmp_path: Path) -> Settings:
    return base_settings(redis_server.url, prefix, tmp_path, dispatch={"mode": "kubernetes"})


async def ready(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://raibid.test") as client:
            return await client.get("/ready")


async def test_ready_fails_naming_kubernetes_when_its_api_is_unreachable(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path, kube: KubeDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    config = kube.kubeconfig(tmp_path / "kubeconfig", port=closed_port())
    monkeypatch.setenv("KUBECONFIG", str(config))
    answer = await ready(kubernetes_mode(redis_server, prefix, tmp_path))
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["redis"] == "ok"
    assert checks["kubernetes"] == "failed: ServiceUnavailableError"


async def test_ready_fails_when_the_api_refuses_the_server(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path, kube: KubeDouble,
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    kube.forbidden = True  # the Role is missing
    answer = await ready(kubernetes_mode(redis_server, prefix, tmp_path))
    assert answer.status_code == 503
    assert answer.json()["checks"]["kubernetes"] != "ok"


async def test_server_in_kubernetes_mode_is_ready_and_creates_agent_jobs_for_waiting_jobs(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path, kube: KubeDouble,
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    queued = create_app(base_settings(redis_server.url, prefix, tmp_path))
    async with queued.router.lifespan_context(queued):
        [job_id] = await trigger(queued.state.raibid)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    app = create_app(kubernetes_mode(redis_server, prefix, tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://raibid.test") as client:
            answer = await client.get("/ready")
        await eventually(
            lambda: kube.job_names() == [agent_job_name(job_id, 1)], 5, "the dispatcher's agent Job"
        )
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"redis": "ok", "kubernetes": "ok"}


async def test_kubernetes_mode_without_credentials_refuses_to_start(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    app = create_app(kubernetes_mode(redis_server, prefix, tmp_path))
    with pytest.raises(ConfigError, match="Kubernetes credentials"):
        async with app.router.lifespan_context(app):
            pass
