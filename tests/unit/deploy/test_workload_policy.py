"""The workload policy (checkov's Kubernetes checks, see tests/support/workload_policy.py) on
every workload kustomize renders, with every exception declared and justified in the manifest.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.support.manifests import (
    DEPLOY,
    Document,
    kustomize_command,
    pod_spec,
    render_directory,
    render_targets,
    resource_manifests,
)
from tests.support.workload_policy import RULE_IDS, failures, violations


def _rendered_workloads() -> list[tuple[str, Document]]:
    if kustomize_command() is None:
        return []
    return [
        (f"{target.relative_to(DEPLOY)}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for target in render_targets()
        for doc in render_directory(target)
        if pod_spec(doc) is not None
    ]


RENDERED = _rendered_workloads()
# Workloads as written in git: the same checks where kubectl is missing, and for components
# that no overlay includes.
WRITTEN = [(m.label, m.body) for m in resource_manifests() if pod_spec(m.body) is not None]
WORKLOADS = RENDERED + WRITTEN


@pytest.mark.parametrize(("label", "document"), WORKLOADS, ids=[w[0] for w in WORKLOADS])
def test_workload_passes_the_policy_or_says_why_not(label: str, document: Document) -> None:
    assert violations(document) == [], label


def test_every_kind_of_workload_is_checked() -> None:
    kinds = {doc["kind"] for _, doc in WORKLOADS}
    assert {"Deployment", "StatefulSet", "ScaledJob"} <= kinds


def test_every_rendered_target_with_pods_is_checked() -> None:
    if kustomize_command() is None:
        pytest.skip("no kubectl and no kustomize")
    targets = {label.split(":")[0] for label, _ in RENDERED}
    assert {"kubernetes/overlays/keda", "kubernetes/overlays/kubernetes-dispatch"} <= targets


def _server() -> Document:
    (manifest,) = [
        m for m in resource_manifests() if m.kind == "Deployment" and m.name == "raibid-api"
    ]
    return copy.deepcopy(manifest.body)


def test_a_root_container_fails_and_cannot_be_excused() -> None:
    deployment = _server()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["runAsUser"] = 0
    annotations = deployment["metadata"].setdefault("annotations", {})
    annotations["checkov.io/skip9"] = "CKV_K8S_23=the test wants a root container here, on purpose"
    assert any(v.startswith("CKV_K8S_23: excused, but") for v in violations(deployment))


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda c: c["securityContext"].update(allowPrivilegeEscalation=True), "CKV_K8S_20"),
        (lambda c: c["securityContext"].pop("readOnlyRootFilesystem"), "CKV_K8S_22"),
        (lambda c: c["resources"]["limits"].pop("cpu"), "CKV_K8S_11"),
        (lambda c: c["resources"]["limits"].pop("memory"), "CKV_K8S_13"),
        (lambda c: c.update(image="ghcr.io/raibid-ci/raibid-api:latest"), "CKV_K8S_14"),
        (lambda c: c.update(image="ghcr.io/raibid-ci/raibid-api"), "CKV_K8S_14"),
        (lambda c: c.pop("livenessProbe"), "CKV_K8S_8"),
        (lambda c: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "CKV_K8S_28"),
    ],
)
def test_each_rule_catches_what_it_names(change: Callable[[Document], object], rule: str) -> None:
    deployment = _server()
    assert rule not in failures(deployment)
    change(deployment["spec"]["template"]["spec"]["containers"][0])
    assert rule in failures(deployment)
    assert any(v.startswith(rule) for v in violations(deployment))


def test_an_exception_needs_a_reason_and_a_failing_rule() -> None:
    deployment = _server()
    annotations = deployment["metadata"]["annotations"]
    (pull_policy,) = [k for k, v in annotations.items() if v.startswith("CKV_K8S_15=")]
    annotations[pull_policy] = "CKV_K8S_15=because"
    annotations["checkov.io/skip8"] = "CKV_K8S_19=the pod shares no host network, yet it says so"
    annotations["checkov.io/skip9"] = "CKV_K8S_99=there is no such check in the rules at all"
    problems = violations(deployment)
    assert "CKV_K8S_15: excused without a reason (`CKV_K8S_15=why`)" in problems
    assert "CKV_K8S_19: excused, but the workload passes it (stale exception)" in problems
    assert "CKV_K8S_99: excused, but no such rule" in problems
    assert "CKV_K8S_99" not in RULE_IDS


def test_the_agent_template_is_checked_as_a_pod_that_runs_to_completion() -> None:
    (manifest,) = [m for m in resource_manifests() if m.kind == "ScaledJob"]
    scaled_job = copy.deepcopy(manifest.body)
    # Agents run to completion: no probes are asked of them.
    assert not {"CKV_K8S_8", "CKV_K8S_9"} & failures(scaled_job)
    (agent,) = scaled_job["spec"]["jobTargetRef"]["template"]["spec"]["containers"]
    agent["securityContext"]["readOnlyRootFilesystem"] = False
    assert "CKV_K8S_22" in failures(scaled_job)
