"""The ConfigMap's config.yaml as raibid-api loads it in the pods the manifests describe.

The config names its secrets by in-cluster paths (/etc/raibid/secrets/...). The tests load it
with those paths pointed at local files (see conftest.py), and check separately that the
Deployment projects a Secret key onto every one of those paths: together, the two checks say
that the server starts with this config in the cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from raibid_api.config import load_settings
from tests.support.manifests import (
    CONFIG_MAP,
    KUBERNETES,
    Document,
    MaterializedConfig,
    config_map_source,
    find,
    kustomize_command,
    load_documents,
    pod_spec,
    projected_files,
    render,
    target_manifests,
)

CONFIG_PATH = "/etc/raibid/config.yaml"
SECRETS = "/etc/raibid/secrets"

KEDA = target_manifests(KUBERNETES / "overlays/keda")
DEPLOYMENT = find(KEDA, "Deployment", "raibid-api")
POD = pod_spec(DEPLOYMENT) or {}
(SERVER,) = POD["containers"]


def _dispatch_patch_env() -> dict[str, str]:
    (patch,) = load_documents(KUBERNETES / "overlays/kubernetes-dispatch/deployment-patch.yaml")
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == SERVER["name"]
    return {env["name"]: env["value"] for env in container["env"]}


def _writable_mounts(spec: Document, container: Document) -> set[str]:
    empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    return {
        m["mountPath"]
        for m in container.get("volumeMounts", [])
        if m["name"] in empty_dirs and not m.get("readOnly")
    }


def test_config_map_is_a_valid_production_config_for_keda_dispatch(
    materialized_config: MaterializedConfig,
) -> None:
    settings = load_settings(materialized_config.path)
    secrets = materialized_config.secrets

    assert settings.server.environment == "production"
    assert settings.dispatch.mode == "keda"
    assert settings.redis.url is not None
    assert settings.redis.url.get_secret_value() == secrets[f"{SECRETS}/redis-url"]
    assert settings.webhooks.gitea.secret is not None
    assert (
        settings.webhooks.gitea.secret.get_secret_value()
        == secrets[f"{SECRETS}/gitea-webhook-secret"]
    )
    assert settings.webhooks.allow_unsigned is False
    assert settings.auth.anonymous_read is False
    assert settings.forges.gitea.token is not None
    assert settings.forges.gitea.token.get_secret_value() == secrets[f"{SECRETS}/gitea-token"]
    assert "file" not in settings.jobs.clone_url_schemes


def test_config_map_tokens_come_from_secrets_with_the_narrowest_scopes(
    materialized_config: MaterializedConfig,
) -> None:
    settings = load_settings(materialized_config.path)
    tokens = {t.name: t for t in settings.auth.tokens}
    assert {name: t.scopes for name, t in tokens.items()} == {
        "reader": ["read"],
        "admin": ["read", "write"],
        "agents": ["agent"],
    }
    agents = tokens["agents"].value
    assert agents is not None
    assert agents.get_secret_value() == materialized_config.secrets[f"{SECRETS}/agent-token"]


def test_every_secret_file_the_config_reads_is_projected_from_a_secret(
    materialized_config: MaterializedConfig,
) -> None:
    mounted = projected_files(POD, SERVER)
    secret_names = {
        source["secret"]["name"]
        for volume in POD["volumes"]
        for source in volume.get("projected", {}).get("sources", [])
        if "secret" in source
    }
    assert materialized_config.secrets
    for cluster_path in materialized_config.secrets:
        assert cluster_path.startswith(f"{SECRETS}/")
        assert cluster_path in mounted, f"{cluster_path} is not mounted"
        assert mounted[cluster_path][0] in secret_names


def test_config_map_is_mounted_where_the_server_is_told_to_read_it() -> None:
    assert SERVER["args"] == ["serve", "--config", CONFIG_PATH]
    assert projected_files(POD, SERVER)[CONFIG_PATH] == (CONFIG_MAP, "config.yaml")


def test_server_listens_on_all_interfaces_at_the_container_port(
    materialized_config: MaterializedConfig,
) -> None:
    settings = load_settings(materialized_config.path)
    ports = {p["name"]: p["containerPort"] for p in SERVER["ports"]}
    assert settings.server.host == "0.0.0.0"  # noqa: S104 - a pod must accept the Service's traffic
    assert ports == {"http": settings.server.port}


def test_webhook_spool_is_on_a_writable_volume(materialized_config: MaterializedConfig) -> None:
    settings = load_settings(materialized_config.path)
    spool = settings.webhooks.spool_dir
    assert spool is not None
    assert any(spool.is_relative_to(Path(m)) for m in _writable_mounts(POD, SERVER))


def test_kubernetes_dispatch_patch_switches_the_mode_through_the_environment(
    materialized_config: MaterializedConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _dispatch_patch_env().items():
        monkeypatch.setenv(name, value)

    settings = load_settings(materialized_config.path)

    kubernetes = settings.dispatch.kubernetes
    assert settings.dispatch.mode == "kubernetes"
    assert kubernetes.image == SERVER["image"]
    assert kubernetes.namespace == DEPLOYMENT["metadata"]["namespace"]
    assert kubernetes.node_selector == POD["nodeSelector"]
    agent_accounts = [m.name for m in KEDA if m.kind == "ServiceAccount"]
    assert kubernetes.service_account in agent_accounts


def _keys(node: object) -> set[str]:
    if isinstance(node, list):
        return {key for item in node for key in _keys(item)}
    if isinstance(node, dict):
        return {str(k) for k in node} | {key for v in node.values() for key in _keys(v)}
    return set()


def test_config_map_holds_no_secret_inline() -> None:
    # A ConfigMap is readable by anyone who may read the namespace; secrets go through *_file.
    document = yaml.safe_load((KUBERNETES / "base/config.yaml").read_text(encoding="utf-8"))
    inline = {"value", "secret", "secrets", "token", "authorization"}
    assert _keys(document) & inline == set()
    assert "url" not in document["redis"]


@pytest.mark.parametrize(
    ("target", "mode"),
    [("base", "keda"), ("overlays/keda", "keda"), ("overlays/kubernetes-dispatch", "kubernetes")],
)
def test_rendered_server_loads_the_config_map_it_mounts_in_the_expected_mode(
    target: str,
    mode: str,
    materialized_config: MaterializedConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if kustomize_command() is None:
        pytest.skip("neither kustomize nor kubectl is installed")
    rendered = render(target)
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    pod = pod_spec(deployment) or {}
    (server,) = pod["containers"]
    config_map_name, key = projected_files(pod, server)[CONFIG_PATH]
    (config_map,) = [
        d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"] == config_map_name
    ]
    assert config_map["data"][key] == config_map_source().read_text(encoding="utf-8")
    for env in server.get("env", []):
        monkeypatch.setenv(env["name"], env["value"])

    settings = load_settings(materialized_config.path)

    assert settings.dispatch.mode == mode
    # the overlays' servers call the Kubernetes API (Jobs, or TokenReview in keda mode)
    assert pod["automountServiceAccountToken"] is (target != "base")
