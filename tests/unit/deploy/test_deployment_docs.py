"""docs/deployment.md against the manifests: the versions it names and the Flux edits it shows."""

from __future__ import annotations

import copy
import os
import re
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from tests.support import crds
from tests.support.manifests import (
    FLUX,
    KUBERNETES,
    NEWEST_SUPPORTED,
    OLDEST_SUPPORTED,
    Document,
    find,
    kustomize_command,
    render_directory,
    resource_manifests,
    target_manifests,
)
from tests.support.paths import REPO_ROOT

DOC = (REPO_ROOT / "docs/deployment.md").read_text(encoding="utf-8")
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
REGISTRY_IMAGE = "gitea.example.com/raibid-ci/raibid-api"


def _snippet(first_key: str) -> Document:
    """The YAML block of the page that starts with ``first_key:``, dedented and loaded."""
    (block,) = [b for b in YAML_BLOCK.findall(DOC) if b.lstrip().startswith(f"{first_key}:")]
    lines = block.splitlines()
    indent = len(lines[0]) - len(lines[0].lstrip())
    loaded: Document = yaml.safe_load("\n".join(line[indent:] for line in lines))
    return loaded


def _flux_kustomization_as_documented() -> Document:
    document = copy.deepcopy(find(target_manifests(FLUX), "Kustomization", "raibid-api"))
    document["spec"].update(_snippet("images"))
    document["spec"].update(_snippet("patches"))
    return document


def _documented_secrets() -> dict[str, set[str]]:
    """Secret name -> keys, from the page's ``kubectl -n ci create secret generic`` commands."""
    commands = re.findall(r"kubectl -n ci create secret generic (.*?)(?<!\\)\n", DOC, re.DOTALL)
    return {
        command.split()[0]: set(re.findall(r"--from-file=([\w-]+)=", command))
        for command in commands
    }


def _referenced_secrets(node: object, found: dict[str, set[str]]) -> dict[str, set[str]]:
    """Secret name -> keys that the manifests read (env, projected volumes, KEDA auth)."""
    if isinstance(node, list):
        for item in node:
            _referenced_secrets(item, found)
    elif isinstance(node, dict):
        refs = [node["secretKeyRef"]] if "secretKeyRef" in node else []
        refs += node.get("secretTargetRef", [])
        secret = node.get("secret")
        if isinstance(secret, dict) and "items" in secret:
            refs += [{"name": secret["name"], "key": item["key"]} for item in secret["items"]]
        for ref in refs:
            found.setdefault(ref["name"], set()).add(ref["key"])
        for value in node.values():
            _referenced_secrets(value, found)
    return found


def test_the_documented_secrets_have_exactly_the_keys_the_manifests_read() -> None:
    read: dict[str, set[str]] = {}
    for manifest in resource_manifests():
        _referenced_secrets(manifest.body, read)
    assert read
    assert _documented_secrets() == read


def test_the_supported_k3s_lines_are_the_schema_versions_of_the_tests() -> None:
    assert f"**v{OLDEST_SUPPORTED}** to **v{NEWEST_SUPPORTED}**" in DOC
    assert f"Kubernetes **{OLDEST_SUPPORTED} and {NEWEST_SUPPORTED}**" in DOC


def test_the_documented_flux_edits_are_a_valid_flux_kustomization() -> None:
    assert crds.errors(_flux_kustomization_as_documented()) == []


def test_the_documented_agent_image_patch_names_this_version() -> None:
    (patch,) = _snippet("patches")["patches"]
    assert f"value: {REGISTRY_IMAGE}:{version('raibid-api')}" in patch["patch"]


@pytest.mark.parametrize("overlay", ["keda", "kubernetes-dispatch"])
def test_the_documented_flux_edits_move_every_raibid_image_to_the_registry(
    overlay: str, tmp_path: Path
) -> None:
    # Flux's kustomize-controller applies spec.images and spec.patches as kustomize does.
    if kustomize_command() is None:
        pytest.skip("no kubectl and no kustomize")
    spec = _flux_kustomization_as_documented()["spec"]
    patches = [{"target": p["target"], "patch": p["patch"]} for p in spec["patches"]]
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(KUBERNETES / "overlays" / overlay, tmp_path)],
                "images": spec["images"],
                "patches": patches if overlay == "kubernetes-dispatch" else [],
            }
        ),
        encoding="utf-8",
    )
    text = yaml.safe_dump_all(render_directory(tmp_path))
    assert "ghcr.io/raibid-ci/raibid-api" not in text
    assert len(re.findall(re.escape(REGISTRY_IMAGE) + ":", text)) >= 2
