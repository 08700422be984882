"""Every custom resource under deploy/ against its vendor's CRD schema, stored in the repository.

The schemas are in tests/fixtures/crds (SOURCES.md names each upstream file and version) and are
applied strictly: a field the CRD does not list fails, as ``kubectl apply --validate=strict``
fails, unless the CRD preserves unknown fields there.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support import crds
from tests.support.manifests import (
    DEPLOY,
    KUBERNETES,
    SCHEMA_VERSIONS,
    Document,
    find,
    is_builtin,
    kustomize_command,
    render_directory,
    render_targets,
    resource_manifests,
)

MONITORING = KUBERNETES / "components/monitoring"
WRITTEN = [(m.label, m.body) for m in resource_manifests() if not is_builtin(m.body)]


def _rendered() -> list[tuple[str, Document]]:
    if kustomize_command() is None:
        return []
    return [
        (f"{target.relative_to(DEPLOY)}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for target in render_targets()
        for doc in render_directory(target)
        if not is_builtin(doc)
    ]


CUSTOM = WRITTEN + _rendered()


@pytest.mark.parametrize(("label", "document"), CUSTOM, ids=[c[0] for c in CUSTOM])
def test_custom_resource_matches_its_vendor_crd_strictly(label: str, document: Document) -> None:
    assert crds.has_schema(document), f"{label}: no CRD schema stored in tests/fixtures/crds"
    assert crds.errors(document) == [], label


@pytest.mark.parametrize("schema_version", SCHEMA_VERSIONS)
@pytest.mark.parametrize(("label", "document"), CUSTOM, ids=[c[0] for c in CUSTOM])
def test_custom_resource_metadata_is_a_valid_object_meta(
    label: str, document: Document, schema_version: str
) -> None:
    # A CRD leaves metadata to the API server, which validates it as ObjectMeta: checked here
    # through a ConfigMap carrying the same metadata, against the official schema.
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": document["metadata"]}
    kubernetes_validate.validate(carrier, schema_version, strict=True)


def test_misspelt_metadata_of_a_custom_resource_is_rejected() -> None:
    metadata = {**_written("ScaledJob")["metadata"], "lables": {"a": "b"}}
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(carrier, SCHEMA_VERSIONS[0], strict=True)


def test_every_custom_kind_the_brief_names_is_covered() -> None:
    kinds = {kind for _, kind in crds.schemas()}
    assert kinds >= {
        "ScaledJob",
        "TriggerAuthentication",
        "GitRepository",
        "Kustomization",
        "PrometheusRule",
        "ServiceMonitor",
    }
    used = {str(doc["kind"]) for _, doc in CUSTOM}
    assert used >= {"ScaledJob", "TriggerAuthentication", "GitRepository", "ServiceMonitor"}


def test_every_stored_crd_names_its_source() -> None:
    sources = crds.SOURCES.read_text(encoding="utf-8")
    for name in crds.crd_files():
        assert f"`{name}`" in sources, name


def _written(kind: str) -> Document:
    return copy.deepcopy(
        find(resource_manifests(), kind, "raibid-api" if kind != "ScaledJob" else "raibid-agent")
    )


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("ScaledJob", ("spec",), "pollingIntervall"),
        ("ScaledJob", ("spec", "rollout"), "stratgy"),
        ("ServiceMonitor", ("spec", "endpoints", 0), "intervall"),
        ("GitRepository", ("spec", "ref"), "brnch"),
        ("Kustomization", ("spec",), "healthCheck"),
    ],
)
def test_strict_mode_rejects_a_misspelt_field(
    kind: str, path: tuple[str | int, ...], field: str
) -> None:
    document = _written(kind)
    node: Any = document
    for key in path:
        node = node[key]
    node[field] = "1"
    assert crds.errors(document) != []


def test_a_wrong_type_or_value_is_rejected() -> None:
    scaled_job = _written("ScaledJob")
    scaled_job["spec"]["maxReplicaCount"] = "4"
    assert any("maxReplicaCount" in e for e in crds.errors(scaled_job))
    monitor = _written("ServiceMonitor")
    monitor["spec"]["endpoints"][0]["scheme"] = "ftp"
    assert any("scheme" in e for e in crds.errors(monitor))


def test_fields_the_crd_preserves_stay_open() -> None:
    # jobTargetRef is a batch/v1 JobSpec: validated against the official schema instead
    # (test_custom_resources.py), so the stored CRD keeps it open.
    scaled_job = _written("ScaledJob")
    assert crds.errors(scaled_job) == []
    del scaled_job["spec"]["jobTargetRef"]["template"]
    assert any("template" in e for e in crds.errors(scaled_job))


@pytest.mark.parametrize(
    "overlay",
    sorted(p.parent for p in (KUBERNETES / "overlays").glob("*/kustomization.yaml")),
    ids=lambda p: p.name,
)
def test_each_overlay_renders_with_the_monitoring_component(overlay: Path, tmp_path: Path) -> None:
    if kustomize_command() is None:
        pytest.skip("no kubectl and no kustomize")
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes only relative paths to other kustomization roots.
                "resources": [os.path.relpath(overlay, tmp_path)],
                "components": [os.path.relpath(MONITORING, tmp_path)],
            }
        ),
        encoding="utf-8",
    )
    rendered = render_directory(tmp_path)
    monitors = [d for d in rendered if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == 1
    for document in rendered:
        if is_builtin(document):
            for version in SCHEMA_VERSIONS:
                kubernetes_validate.validate(document, version, strict=True)
        else:
            assert crds.errors(document) == [], document["kind"]


def test_service_monitor_scrapes_the_path_and_port_the_server_pods_announce() -> None:
    monitor = _written("ServiceMonitor")
    service = find(resource_manifests(), "Service", "raibid-api")
    deployment = find(resource_manifests(), "Deployment", "raibid-api")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = service["spec"]["ports"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == annotations["prometheus.io/path"]
    assert str(port["port"]) == annotations["prometheus.io/port"]
