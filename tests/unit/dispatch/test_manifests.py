"""The agent Job body: official schema (strict), restricted pod security, names, the agent's CLI."""

from __future__ import annotations

import re
import uuid
from typing import Any

import kubernetes_validate
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from raibid_api.cli import app as cli_app
from raibid_api.config import Settings, load_settings
from raibid_api.dispatch.manifests import (
    AGENT_SELECTOR,
    DEADLINE_MARGIN_S,
    LABEL_ATTEMPT,
    LABEL_JOB_ID,
    AgentJobTemplate,
    agent_job,
    agent_job_name,
    claim_token_secret,
)
from raibid_api.errors import InvalidJobIdError
from tests.support.manifests import OLDEST_SUPPORTED, SCHEMA_VERSIONS

JOB_ID = "3f2a9c1e-7b4d-4c55-8e0f-0123456789ab"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# The ServiceAccount and Secret that deploy/kubernetes/components/agents and the docs define.
DEPLOYED_SERVICE_ACCOUNT = "raibid-agent"


def settings(**kubernetes: Any) -> Settings:
    return load_settings(
        None, dispatch={"mode": "kubernetes", "kubernetes": kubernetes}, jobs={"timeout": "1h"}
    )


def body(**kubernetes: Any) -> dict[str, Any]:
    return agent_job(AgentJobTemplate.from_settings(settings(**kubernetes)), JOB_ID, 2)


def pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers = pod(job)["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


MINIMAL = AgentJobTemplate(
    namespace="builds", image="agent:1", server_url="http://raibid.builds.svc:8080",
    service_account=None, ttl_seconds=0, node_selector={},
)  # fmt: skip


@pytest.mark.parametrize("schema_version", SCHEMA_VERSIONS)
@pytest.mark.parametrize(
    "template",
    [AgentJobTemplate.from_settings(settings()), MINIMAL],
    ids=["defaults", "no-service-account-no-node-selector"],
)
def test_agent_job_matches_the_official_schema_strictly(
    schema_version: str, template: AgentJobTemplate
) -> None:
    job = agent_job(template, JOB_ID, 1)
    kubernetes_validate.validate(job, schema_version, strict=True)


def test_optional_fields_are_left_out_when_not_configured() -> None:
    spec = pod(agent_job(MINIMAL, JOB_ID, 1))
    assert "serviceAccountName" not in spec
    assert "nodeSelector" not in spec


def test_schema_check_rejects_a_misspelt_field_of_the_agent_job() -> None:
    job = body()
    pod(job)["enableServiceLink"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, OLDEST_SUPPORTED, strict=True)


def test_agent_pod_meets_the_restricted_pod_security_standard() -> None:
    spec = pod(body())
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for each in spec["initContainers"] + spec["containers"]:
        context = each["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        assert context.get("privileged") is not True
    assert not {"hostNetwork", "hostPID", "hostIPC"} & spec.keys()
    kinds = {volume["name"]: set(volume) - {"name"} for volume in spec["volumes"]}
    assert kinds == {
        "claim-token": {"secret"}, "agent-token": {"emptyDir"}, "workspace": {"emptyDir"},
        "home": {"emptyDir"}, "tmp": {"emptyDir"},
    }  # fmt: skip


def test_agent_container_writes_only_to_its_own_empty_dirs_and_never_mounts_the_secret() -> None:
    job = body()
    spec, agent = pod(job), container(job)
    assert agent["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {mount["mountPath"]: mount["name"] for mount in agent["volumeMounts"]}
    assert set(mounts) == {"/workspace", "/tmp", "/home/raibid", "/run/raibid"}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    assert volumes[mounts["/run/raibid"]]["emptyDir"]["medium"] == "Memory"
    assert agent["workingDir"] == "/workspace"


def test_agent_pod_s_only_credential_is_its_own_job_s_secret_copied_for_the_agent() -> None:
    job = body()
    spec, agent = pod(job), container(job)
    name = job["metadata"]["name"]
    assert spec["enableServiceLinks"] is False
    assert spec["automountServiceAccountToken"] is False
    assert "env" not in agent
    assert "envFrom" not in agent
    secrets = [volume["secret"]["secretName"] for volume in spec["volumes"] if "secret" in volume]
    assert secrets == [name]
    (copier,) = spec["initContainers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in copier["volumeMounts"]}
    source, target = copier["command"][1:]
    assert copier["command"][0] == "cp"
    assert source == f"{mounts['claim-token']}/token"
    params = _parse_agent_command(agent["args"])
    assert str(params["token_file"]) == target
    assert target.startswith(mounts["agent-token"] + "/")


def test_claim_token_secret_is_owned_by_its_job_and_holds_only_the_token() -> None:
    template = AgentJobTemplate.from_settings(settings())
    job = agent_job(template, JOB_ID, 2)
    secret = claim_token_secret(template, JOB_ID, 2, token="rjc1.x", owner_uid="uid-1")
    assert secret["metadata"]["name"] == job["metadata"]["name"]
    assert secret["metadata"]["namespace"] == job["metadata"]["namespace"]
    assert secret["metadata"]["labels"] == job["metadata"]["labels"]
    assert secret["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"], "uid": "uid-1"}
    ]
    assert secret["stringData"] == {"token": "rjc1.x"}
    assert secret["immutable"] is True
    for version in SCHEMA_VERSIONS:
        kubernetes_validate.validate(secret, version, strict=True)


def test_agent_job_runs_once_never_restarts_and_ends_after_the_job_timeout() -> None:
    job = body(ttl_seconds_after_finished=600)
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    assert job["spec"]["activeDeadlineSeconds"] == 3600 + DEADLINE_MARGIN_S
    assert pod(job)["restartPolicy"] == "Never"


def test_agent_job_uses_the_configured_image_resources_account_and_nodes() -> None:
    job = body(
        image="registry.example/agent:1.2.3",
        cpu="500m",
        memory="1Gi",
        cpu_limit="3",
        memory_limit="6Gi",
        service_account=DEPLOYED_SERVICE_ACCOUNT,
        node_selector={"kubernetes.io/arch": "amd64"},
    )
    spec, agent = pod(job), container(job)
    assert agent["image"] == "registry.example/agent:1.2.3"
    assert agent["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "3", "memory": "6Gi"},
    }
    assert spec["serviceAccountName"] == DEPLOYED_SERVICE_ACCOUNT
    assert spec["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    assert job["metadata"]["namespace"] == "ci"


def test_agents_get_two_cpus_and_4_gib_and_reserve_half_by_default() -> None:
    assert container(body())["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }


def test_agent_job_and_its_pod_carry_the_agent_labels_and_the_job_they_are_for() -> None:
    job = body()
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/name"] == "raibid-agent"  # the NetworkPolicy's selector
        assert AGENT_SELECTOR.items() <= labels.items()
        assert labels[LABEL_JOB_ID] == JOB_ID
        assert labels[LABEL_ATTEMPT] == "2"


def _parse_agent_command(args: list[str]) -> dict[str, Any]:
    """The parameters the real `raibid-api` CLI parses from ``args`` (without running it)."""
    group: Any = typer.main.get_command(cli_app)
    command = group.commands[args[0]]
    params: dict[str, Any] = command.make_context(args[0], args[1:]).params
    return params


def test_agent_container_arguments_are_accepted_by_the_agent_command() -> None:
    job = body()
    agent = container(job)
    assert "command" not in agent  # the image's tini entrypoint stays PID 1
    params = _parse_agent_command(agent["args"])
    assert params["server"] == "http://raibid-api.ci.svc:8080"
    assert params["token"] is None
    assert str(params["token_file"]) == "/run/raibid/token"
    assert params["once"] is True
    assert params["agent_id"] == job["metadata"]["name"]
    assert str(params["workspace"]) == "/workspace"
    assert params["job_timeout"] == "1h"


def test_agent_job_name_is_the_short_job_id_and_the_attempt() -> None:
    assert agent_job_name(JOB_ID, 2) == "raibid-agent-3f2a9c1e-7b4d-2"
    assert agent_job_name(JOB_ID.upper(), 2) == agent_job_name(JOB_ID, 2)
    assert body()["metadata"]["name"] == "raibid-agent-3f2a9c1e-7b4d-2"


@given(job_id=st.uuids(), attempt=st.integers(min_value=1, max_value=100))
def test_agent_job_name_is_a_dns_1123_label_for_every_job(job_id: uuid.UUID, attempt: int) -> None:
    name = agent_job_name(str(job_id), attempt)
    assert len(name) <= 63
    assert DNS_LABEL.fullmatch(name)


def test_agent_job_name_refuses_an_id_that_is_not_a_uuid() -> None:
    with pytest.raises(InvalidJobIdError):
        agent_job_name("../../etc", 1)
