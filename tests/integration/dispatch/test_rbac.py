"""The RBAC in deploy/ grants exactly the Kubernetes calls the server makes, read off the double.

Every request the dispatcher (kubernetes mode) and the token reviewer (keda mode) send to the API
double is turned into the (verb, API group, resource) the API server's authorizer checks, and
compared with the rules of the overlay's Role or ClusterRole: nothing used may be missing, and
nothing granted may go unused.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from raibid_api.api.deps import AppState
from raibid_api.app import create_app
from raibid_api.dispatch.manifests import agent_job_name
from raibid_api.domain.jobs import parse_job_id
from raibid_api.embedded import EmbeddedRedis
from tests.support.dispatch import DispatcherFactory, base_settings, trigger
from tests.support.kube_double import KubeDouble
from tests.support.manifests import KUBERNETES, load_documents

Permission = tuple[str, str, str]  # verb, API group ("" for core), resource
RUNNING = {"running": {"startedAt": "2026-03-01T12:00:00Z"}}


def permission(method: str, path: str, query: dict[str, str]) -> Permission:
    """What the authorizer checks for one request (namespaced or cluster-scoped)."""
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[:1] == ["namespaces"]:
        rest = rest[2:]
    resource, named = rest[0], len(rest) > 1
    if method == "GET":
        verb = "get" if named else ("watch" if query.get("watch") in ("1", "true") else "list")
    else:
        verb = {"POST": "create", "DELETE": "delete", "PUT": "update", "PATCH": "patch"}[method]
    return verb, group, resource


def used(kube: KubeDouble) -> set[Permission]:
    return {permission(*request) for request in kube.requests}


def granted(path: Path) -> set[Permission]:
    (role,) = load_documents(path)
    return {
        (verb, group, resource)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


async def test_the_dispatch_role_grants_exactly_what_the_dispatcher_calls(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    dispatcher = dispatcher_for()
    [finished, cancelled] = await trigger(state, 2)
    await dispatcher.ping()
    await dispatcher.dispatch_once()  # create Jobs and their Secrets, list Jobs
    kube.run_pod(agent_job_name(finished, 1), RUNNING, phase="Running")
    kube.run_pod(agent_job_name(cancelled, 1), RUNNING, phase="Running")
    await dispatcher.dispatch_once()  # list pods of running Jobs
    kube.finish_job(agent_job_name(finished, 1), succeeded=True)
    await state.jobs.cancel(parse_job_id(cancelled))
    await dispatcher.dispatch_once()  # delete the Job of the cancelled job

    calls = used(kube)
    assert ("delete", "batch", "jobs") in calls
    assert ("create", "", "secrets") in calls
    assert calls == granted(KUBERNETES / "overlays/kubernetes-dispatch/role.yaml")


async def test_the_keda_cluster_role_grants_exactly_the_token_review(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path, kube: KubeDouble,
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    app = create_app(base_settings(redis_server.url, prefix, tmp_path, dispatch={"mode": "keda"}))
    async with app.router.lifespan_context(app):
        await trigger(app.state.raibid)
        token = kube.issue_pod_token(kube.add_pod("agent"), "raibid-api")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://raibid.test") as client:
            answer = await client.post("/agent/claim", json={"agent_id": "a", "wait": 0},
                                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 200
    assert used(kube) == granted(KUBERNETES / "overlays/keda/clusterrole.yaml")
