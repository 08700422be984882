"""Fixtures of the dispatcher tests: the Kubernetes API double, and the real services on Redis.

The job and agent services come from the app's own composition root (``dispatch.mode: none``,
so nothing else dispatches) under its lifespan, on the session's real Redis. Each dispatcher
gets its own lightkube client, pointed at the double through a generated kubeconfig.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from lightkube import KubeConfig

from raibid_api.api.deps import AppState
from raibid_api.app import create_app
from raibid_api.config import Settings, load_settings
from raibid_api.dispatch.cluster import LightkubeClusterApi
from raibid_api.dispatch.dispatcher import KubernetesDispatcher, create_dispatcher
from raibid_api.embedded import EmbeddedRedis
from raibid_api.jobs.service import ManualTrigger
from tests.factories import ManualClock
from tests.integration.dispatch.kube_double import KubeDouble

AGENT_TOKEN = "agent-token-0123456789"
DispatcherFactory = Callable[..., KubernetesDispatcher]


@pytest.fixture
async def kube() -> AsyncIterator[KubeDouble]:
    """The API server double, serving."""
    async with KubeDouble().serving() as double:
        yield double


@pytest.fixture
def kubeconfig(kube: KubeDouble, tmp_path: Path) -> Path:
    """A kubeconfig file naming the double and its token."""
    return kube.kubeconfig(tmp_path / "kubeconfig")


def base_settings(redis_url: str, prefix: str, tmp_path: Path, **sections: object) -> Settings:
    """Settings of a test server on the session Redis under the test's prefix."""
    defaults: dict[str, object] = {
        "redis": {"url": redis_url, "key_prefix": prefix},
        "auth": {"tokens": [{"name": "agents", "scopes": ["agent"], "value": AGENT_TOKEN}]},
        "dispatch": {"mode": "none"},
        "jobs": {"reaper_interval": "1h"},
        "webhooks": {"spool_dir": str(tmp_path / "spool")},
    }
    return load_settings(None, **(defaults | sections))


@pytest.fixture
async def state(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path
) -> AsyncIterator[AppState]:
    """The server's parts (job service, agent service) under the app's lifespan, on real Redis."""
    app = create_app(base_settings(redis_server.url, prefix, tmp_path))
    async with app.router.lifespan_context(app):
        yield app.state.raibid


@pytest.fixture
def clock() -> ManualClock:
    """The dispatchers' clock, at the wall clock's now."""
    return ManualClock(time.time_ns() // 1_000_000)


@pytest.fixture
async def dispatcher_for(
    state: AppState,
    kubeconfig: Path,
    clock: ManualClock,
    redis_server: EmbeddedRedis,
    prefix: str,
    tmp_path: Path,
) -> AsyncIterator[DispatcherFactory]:
    """``dispatcher_for(kubernetes={...})``: a dispatcher (a replica) with its own API client."""
    async with AsyncExitStack() as stack:

        def build(**kubernetes: object) -> KubernetesDispatcher:
            settings = base_settings(
                redis_server.url,
                prefix,
                tmp_path,
                dispatch={"mode": "kubernetes", "kubernetes": kubernetes},
            )
            api = LightkubeClusterApi.connect("ci", KubeConfig.from_file(kubeconfig))
            stack.push_async_callback(api.close)
            return create_dispatcher(settings, state.jobs, clock, api=api)

        yield build


async def trigger(state: AppState, count: int = 1) -> list[str]:
    """Queue ``count`` manual jobs; their ids, oldest first."""
    ids = []
    for n in range(count):
        request = ManualTrigger(
            "acme/widgets", "https://git.example.test/acme/widgets.git", branch=f"b{n}"
        )
        ids.append(str((await state.jobs.trigger(request))["id"]))
    return ids


async def claim(state: AppState, agent_id: str) -> str:
    """Claim the next job as agent ``agent_id`` speaks the agent protocol; its id."""

    async def gone() -> bool:
        return False

    claimed = await state.agents.claim(agent_id, [], 1.0, gone)
    assert claimed is not None
    return str(claimed.job["id"])
