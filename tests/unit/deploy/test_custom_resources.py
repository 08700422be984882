"""Focused checks of the custom resources, whose schemas kubernetes-validate does not ship.

KEDA's ScaledJob and TriggerAuthentication and Flux's GitRepository and Kustomization are checked
field by field for what raibid-api relies on; the Job a ScaledJob creates is a plain batch/v1
JobSpec, so that part does go through the official schema.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from raibid_api.config import KedaSettings, KubernetesSettings
from tests.support.manifests import (
    FLUX,
    KUBERNETES,
    NAMESPACE,
    SCHEMA_VERSIONS,
    Document,
    config_map_source,
    find,
    pod_spec,
    pod_template,
    secrets_referenced,
    target_manifests,
)
from tests.support.paths import REPO_ROOT

KEDA = target_manifests(KUBERNETES / "overlays/keda")
SCALED_JOB = find(KEDA, "ScaledJob", "raibid-agent")
(TRIGGER,) = SCALED_JOB["spec"]["triggers"]
AGENT_POD = pod_spec(SCALED_JOB) or {}
(AGENT,) = AGENT_POD["containers"]
SERVER_POD = pod_spec(find(KEDA, "Deployment", "raibid-api")) or {}
REDIS = find(KEDA, "StatefulSet", "raibid-redis")
FLUX_OBJECTS = target_manifests(FLUX)
GIT_REPOSITORY = find(FLUX_OBJECTS, "GitRepository", "raibid-api")
FLUX_KUSTOMIZATION = find(FLUX_OBJECTS, "Kustomization", "raibid-api")
FLUX_DURATION = re.compile(r"^(\d+(ms|s|m|h))+$")


def _service_address(name: str) -> tuple[str, int]:
    service = find(KEDA, "Service", name)
    (port,) = service["spec"]["ports"]
    return f"{name}.{service['metadata']['namespace']}.svc", int(port["port"])


def test_scaled_job_is_a_keda_v1alpha1_object_in_the_ci_namespace() -> None:
    assert SCALED_JOB["apiVersion"] == "keda.sh/v1alpha1"
    assert SCALED_JOB["metadata"]["namespace"] == NAMESPACE
    assert SCALED_JOB["spec"]["maxReplicaCount"] >= 1


def test_scaled_job_counts_waiting_and_running_jobs_on_the_queue_stream() -> None:
    prefix = yaml.safe_load(config_map_source().read_text(encoding="utf-8"))["redis"]["key_prefix"]
    metadata = TRIGGER["metadata"]
    assert TRIGGER["type"] == "redis-streams"
    assert metadata["stream"] == f"{prefix}:jobs" == "raibid:jobs"
    # Without consumerGroup KEDA reads XLEN (waiting + running jobs), which pairs with the
    # "default" strategy; with it KEDA would read XPENDING or the group lag instead.
    assert "consumerGroup" not in metadata
    assert "lagCount" not in metadata
    assert metadata["streamLength"] == "1"
    # KEDA's default strategy, left implicit: KEDA 2.20's CRD refuses an explicit "default".
    assert "strategy" not in SCALED_JOB["spec"].get("scalingStrategy", {})


def test_scaled_job_reads_redis_through_the_redis_service() -> None:
    host, port = _service_address("raibid-redis")
    assert TRIGGER["metadata"]["address"] == f"{host}.cluster.local:{port}"


def test_trigger_authentication_gives_keda_the_password_redis_requires() -> None:
    authentication = find(KEDA, "TriggerAuthentication", TRIGGER["authenticationRef"]["name"])
    assert authentication["apiVersion"] == "keda.sh/v1alpha1"
    (reference,) = authentication["spec"]["secretTargetRef"]
    (redis,) = (pod_spec(REDIS) or {})["containers"]
    (password,) = [e for e in redis["env"] if e["name"] == "REDISCLI_AUTH"]
    assert redis["args"][redis["args"].index("--requirepass") + 1] == "$(REDISCLI_AUTH)"
    assert reference["parameter"] == "password"
    assert {"name": reference["name"], "key": reference["key"]} == password["valueFrom"][
        "secretKeyRef"
    ]


@pytest.mark.parametrize("schema_version", SCHEMA_VERSIONS)
def test_scaled_job_template_is_a_valid_batch_v1_job_spec(schema_version: str) -> None:
    job: Document = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "raibid-agent", "namespace": NAMESPACE},
        "spec": SCALED_JOB["spec"]["jobTargetRef"],
    }
    kubernetes_validate.validate(job, schema_version, strict=True)


def test_agent_pods_receive_no_secret_at_all() -> None:
    assert secrets_referenced(AGENT_POD) == set()
    assert "raibid-redis" in secrets_referenced(SERVER_POD)
    assert AGENT_POD["automountServiceAccountToken"] is False
    assert "env" not in AGENT
    assert "envFrom" not in AGENT


def test_redis_accepts_connections_from_the_server_and_not_from_agents() -> None:
    (rule,) = find(KEDA, "NetworkPolicy", "raibid-redis")["spec"]["ingress"]
    pod_peers = [p["podSelector"]["matchLabels"] for p in rule["from"] if "podSelector" in p]
    agent = (pod_template(SCALED_JOB) or {})["metadata"]["labels"]
    server = (pod_template(find(KEDA, "Deployment", "raibid-api")) or {})["metadata"]["labels"]
    assert any(peer.items() <= server.items() for peer in pod_peers)
    assert not any(peer.items() <= agent.items() for peer in pod_peers)


def test_agent_runs_one_job_against_the_in_cluster_server() -> None:
    args = AGENT["args"]
    assert args[0] == "agent"
    assert "--once" in args
    server = urlsplit(args[args.index("--server") + 1])
    assert (server.scheme, server.hostname, server.port) == (
        "http",
        *_service_address("raibid-api"),
    )
    assert "--token" not in args


def test_scaled_job_leaves_running_builds_alone_and_never_retries_an_agent() -> None:
    spec = SCALED_JOB["spec"]
    assert spec["rollout"]["strategy"] == "gradual"
    assert spec["jobTargetRef"]["backoffLimit"] == 0
    assert AGENT_POD["restartPolicy"] == "Never"


def test_git_repository_is_a_flux_v1_source_tracking_a_branch() -> None:
    assert GIT_REPOSITORY["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    spec = GIT_REPOSITORY["spec"]
    assert urlsplit(spec["url"]).scheme in {"https", "ssh"}
    assert spec["ref"]["branch"]
    assert FLUX_DURATION.match(spec["interval"])


def test_flux_kustomization_prunes_an_overlay_of_this_repository() -> None:
    assert FLUX_KUSTOMIZATION["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    spec = FLUX_KUSTOMIZATION["spec"]
    assert spec["sourceRef"] == {
        "kind": "GitRepository",
        "name": GIT_REPOSITORY["metadata"]["name"],
    }
    assert FLUX_KUSTOMIZATION["metadata"]["namespace"] == GIT_REPOSITORY["metadata"]["namespace"]
    assert spec["prune"] is True
    assert all(FLUX_DURATION.match(spec[key]) for key in ("interval", "retryInterval", "timeout"))
    overlay = (REPO_ROOT / spec["path"]).resolve()
    assert overlay.is_relative_to(KUBERNETES / "overlays")
    assert (overlay / "kustomization.yaml").is_file()


def test_flux_health_checks_name_objects_the_overlay_deploys() -> None:
    spec = FLUX_KUSTOMIZATION["spec"]
    deployed = {
        (m.body["apiVersion"], m.kind, m.name, m.body["metadata"].get("namespace"))
        for m in target_manifests((REPO_ROOT / spec["path"]).resolve())
    }
    checks = {(c["apiVersion"], c["kind"], c["name"], c["namespace"]) for c in spec["healthChecks"]}
    assert ("apps/v1", "Deployment", "raibid-api", NAMESPACE) in checks
    assert checks <= deployed


def test_keda_agents_have_the_size_of_the_dispatcher_s_agents() -> None:
    kube = KubernetesSettings()
    assert AGENT["resources"] == {
        "requests": {"cpu": kube.cpu, "memory": kube.memory},
        "limits": {"cpu": kube.cpu_limit, "memory": kube.memory_limit},
    }


def test_agent_claims_with_its_pod_s_token_which_only_the_init_container_mounts() -> None:
    volumes = {volume["name"]: volume for volume in AGENT_POD["volumes"]}
    (source,) = volumes["pod-identity"]["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] == KedaSettings().audience
    assert token["expirationSeconds"] <= 3600
    (copier,) = AGENT_POD["initContainers"]
    copier_mounts = {m["name"]: m["mountPath"] for m in copier["volumeMounts"]}
    agent_mounts = {m["name"]: m["mountPath"] for m in AGENT["volumeMounts"]}
    assert "pod-identity" not in agent_mounts
    assert volumes["agent-token"]["emptyDir"]["medium"] == "Memory"
    command, copied_from, copied_to = copier["command"]
    assert command == "cp"
    assert copied_from == f"{copier_mounts['pod-identity']}/{token['path']}"
    assert copied_to.startswith(agent_mounts["agent-token"] + "/")
    assert AGENT["args"][AGENT["args"].index("--token-file") + 1] == copied_to
    assert AGENT_POD["serviceAccountName"] == KedaSettings().service_account
