"""How the server's objects fit together: selectors, ports, probes, disruption budget, RBAC."""

from __future__ import annotations

import pytest

from tests.support.manifests import (
    KUBERNETES,
    NAMESPACE,
    Document,
    find,
    load_documents,
    pod_spec,
    pod_template,
    target_manifests,
)

KEDA = target_manifests(KUBERNETES / "overlays/keda")
DISPATCH = target_manifests(KUBERNETES / "overlays/kubernetes-dispatch")
DEPLOYMENT = find(KEDA, "Deployment", "raibid-api")
POD = pod_spec(DEPLOYMENT) or {}
(SERVER,) = POD["containers"]
POD_LABELS = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def _selects_server(selector: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= POD_LABELS.items()


def test_deployment_runs_two_replicas_without_dropping_capacity_on_rollout() -> None:
    spec = DEPLOYMENT["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert _selects_server(spec["selector"]["matchLabels"])


def test_probes_check_liveness_on_health_and_readiness_on_ready() -> None:
    port_names = {p["name"] for p in SERVER["ports"]}
    probes = {
        kind: (SERVER[kind]["httpGet"]["path"], SERVER[kind]["httpGet"]["port"])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert {path for path, _ in probes.values()} == {"/health", "/ready"}
    assert probes["livenessProbe"][0] == "/health"
    assert probes["readinessProbe"][0] == "/ready"
    assert {port for _, port in probes.values()} <= port_names


def test_server_declares_resource_requests_and_memory_limit() -> None:
    resources = SERVER["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


@pytest.mark.parametrize(
    ("kind", "selector_path"),
    [
        ("Service", ("selector",)),
        ("PodDisruptionBudget", ("selector", "matchLabels")),
        ("NetworkPolicy", ("podSelector", "matchLabels")),
    ],
)
def test_object_selects_the_server_pods_and_no_others(
    kind: str, selector_path: tuple[str, ...]
) -> None:
    selector = find(KEDA, kind, "raibid-api")["spec"]
    for key in selector_path:
        selector = selector[key]
    workloads = {m.label: pod_template(m.body) for m in KEDA}
    selected = [
        label
        for label, template in workloads.items()
        if template is not None and selector.items() <= template["metadata"]["labels"].items()
    ]
    assert selected == [m.label for m in KEDA if m.body is DEPLOYMENT]


def test_service_and_network_policy_open_the_container_http_port() -> None:
    container_port = {p["name"]: p["containerPort"] for p in SERVER["ports"]}["http"]
    (service_port,) = find(KEDA, "Service", "raibid-api")["spec"]["ports"]
    assert service_port["targetPort"] in {"http", container_port}
    assert service_port["port"] == 8080
    (rule,) = find(KEDA, "NetworkPolicy", "raibid-api")["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [container_port]


def _rules(role: Document) -> dict[tuple[str, str], list[str]]:
    return {
        (group, resource): sorted(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


def test_keda_overlay_lets_the_server_review_tokens_and_do_nothing_else() -> None:
    account = find(KEDA, "ServiceAccount", POD["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False  # only the server's pod mounts it
    assert POD["automountServiceAccountToken"] is False  # in base; the overlay patches it in
    (patch,) = load_documents(KUBERNETES / "overlays/keda/deployment-patch.yaml")
    assert patch["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    rbac = [m.body for m in KEDA if m.kind in RBAC_KINDS]
    assert sorted(obj["kind"] for obj in rbac) == ["ClusterRole", "ClusterRoleBinding"]
    role = find(KEDA, "ClusterRole", "raibid-api-token-review")
    assert _rules(role) == {("authentication.k8s.io", "tokenreviews"): ["create"]}
    binding = find(KEDA, "ClusterRoleBinding", "raibid-api-token-review")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": POD["serviceAccountName"], "namespace": NAMESPACE}
    ]


def _patched_pod() -> Document:
    (patch,) = load_documents(KUBERNETES / "overlays/kubernetes-dispatch/deployment-patch.yaml")
    assert patch["metadata"]["name"] == DEPLOYMENT["metadata"]["name"]
    spec: Document = patch["spec"]["template"]["spec"]
    return spec


def test_dispatch_role_grants_only_job_pod_and_secret_access_in_the_namespace() -> None:
    (role,) = [m.body for m in DISPATCH if m.kind == "Role"]
    assert role["metadata"]["namespace"] == NAMESPACE
    # tests/integration/dispatch/test_rbac.py checks these against the dispatcher's calls
    assert _rules(role) == {
        ("batch", "jobs"): ["create", "delete", "list"],
        ("", "pods"): ["list"],
        ("", "secrets"): ["create"],
    }
    assert not [m for m in DISPATCH if m.kind in {"ClusterRole", "ClusterRoleBinding"}]


def test_dispatch_role_is_bound_to_the_server_account_whose_token_is_mounted() -> None:
    (role,) = [m.body for m in DISPATCH if m.kind == "Role"]
    (binding,) = [m.body for m in DISPATCH if m.kind == "RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": POD["serviceAccountName"], "namespace": NAMESPACE}
    ]
    assert _patched_pod()["automountServiceAccountToken"] is True


def test_agent_service_account_holds_no_token_in_either_overlay() -> None:
    for manifests in (KEDA, DISPATCH):
        account = find(manifests, "ServiceAccount", "raibid-agent")
        assert account["automountServiceAccountToken"] is False
