"""Fixtures of the dispatcher tests: the Kubernetes API double, and the real services on Redis.

The job and agent services come from the app's own composition root (``dispatch.mode: none``,
so nothing else dispatches) under its lifespan, on the session's real Redis. Each dispatcher
gets its own lightkube client, pointed at the double through a generated kubeconfig.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from lightkube import KubeConfig

from raibid_api.api.deps import AppState
from raibid_api.app import create_app
from raibid_api.dispatch.cluster import LightkubeClusterApi
from raibid_api.dispatch.dispatcher import KubernetesDispatcher, create_dispatcher
from raibid_api.embedded import EmbeddedRedis
from tests.support.dispatch import CLAIM_KEY, DispatcherFactory, base_settings
from tests.support.factories import ManualClock
from tests.support.kube_double import KubeDouble


@pytest.fixture
async def kube() -> AsyncIterator[KubeDouble]:
    """The API server double, serving."""
    async with KubeDouble().serving() as double:
        yield double


@pytest.fixture
def kubeconfig(kube: KubeDouble, tmp_path: Path) -> Path:
    """A kubeconfig file naming the double and its token."""
    return kube.kubeconfig(tmp_path / "kubeconfig")


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
            return create_dispatcher(settings, state.jobs, clock, CLAIM_KEY, api=api)

        yield build
