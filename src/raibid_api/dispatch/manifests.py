"""The agent Job of one CI job: a pure function from settings and a job id to a batch/v1 body.

The pod passes the restricted Pod Security Standard, is selected by the agent NetworkPolicy
(``app.kubernetes.io/name: raibid-agent``) and runs ``raibid-api agent --once`` under the image's
``tini`` entrypoint. Its only credential is a claim token for its own job and attempt, in a Secret
the Job owns (`claim_token_secret`): an init container copies it into a memory ``emptyDir`` that
the agent's container alone mounts, and the agent reads the file and deletes it before any build
step runs (``--token-file``), so no step finds it on disk, in an environment or on a command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from raibid_api.config import Settings, format_duration
from raibid_api.domain.jobs import parse_job_id

AGENT_NAME = "raibid-agent"
MANAGER = "raibid-api"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_JOB_ID = "raibid-ci/job-id"
LABEL_ATTEMPT = "raibid-ci/attempt"
# What every agent Job (and its pod) of this server carries: the dispatcher lists by it.
AGENT_SELECTOR: Mapping[str, str] = {LABEL_NAME: AGENT_NAME, LABEL_MANAGED_BY: MANAGER}
# Set by the Job controller on each pod it creates (Kubernetes 1.27 and later).
POD_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"

TOKEN_KEY = "token"  # noqa: S105  (the key inside the Secret, not a secret)
CLAIM_MOUNT = "/run/secrets/raibid"  # the Secret, in the init container only
CLAIM_DIR = "/run/raibid"  # a memory emptyDir: the copy the agent deletes once read
CLAIM_FILE = f"{CLAIM_DIR}/{TOKEN_KEY}"
AGENT_UID = 10001  # the image's USER; the emptyDir volumes are group-writable through fsGroup
WORKSPACE = "/workspace"
HOME = "/home/raibid"
# The pod may wait for its claim and clone before the build's own timeout starts, and needs
# time to report afterwards; the server enforces jobs.timeout itself, this is the backstop.
DEADLINE_MARGIN_S = 900
_SHORT_ID = 13  # "3f2a9c1e-7b4d": the id's first 48 random bits, still a prefix of the id


@dataclass(frozen=True)
class AgentJobTemplate:
    """What every agent Job shares; `agent_job` adds the CI job it is made for."""

    namespace: str
    image: str
    server_url: str
    service_account: str | None = None
    cpu: str = "1"
    memory: str = "2Gi"
    cpu_limit: str = "2"
    memory_limit: str = "4Gi"
    ttl_seconds: int = 3600
    job_timeout_s: int = 3600
    node_selector: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentJobTemplate:
        """The template ``dispatch.kubernetes`` and ``jobs.timeout`` describe."""
        kube = settings.dispatch.kubernetes
        return cls(
            namespace=kube.namespace,
            image=kube.image,
            server_url=in_cluster_url(settings),
            service_account=kube.service_account,
            cpu=kube.cpu,
            memory=kube.memory,
            cpu_limit=kube.cpu_limit,
            memory_limit=kube.memory_limit,
            ttl_seconds=kube.ttl_seconds_after_finished,
            job_timeout_s=int(settings.jobs.timeout.total_seconds()),
            node_selector=dict(kube.node_selector),
        )


def in_cluster_url(settings: Settings) -> str:
    """The server as agent pods reach it: the ``raibid-api`` Service in the agents' namespace."""
    namespace = settings.dispatch.kubernetes.namespace
    return f"http://raibid-api.{namespace}.svc:{settings.server.port}"


def agent_job_name(job_id: str, attempt: int) -> str:
    """``raibid-agent-<short job id>-<attempt>``: deterministic, so a create is idempotent.

    Raises:
        InvalidJobIdError: ``job_id`` is not a UUID.
    """
    short = parse_job_id(job_id)[:_SHORT_ID]
    return f"{AGENT_NAME}-{short}-{attempt}"


def agent_labels(job_id: str, attempt: int) -> dict[str, str]:
    """The labels of an agent Job and its pod."""
    return {
        **AGENT_SELECTOR,
        "app.kubernetes.io/component": "agent",
        "app.kubernetes.io/part-of": "raibid-ci",
        LABEL_JOB_ID: parse_job_id(job_id),
        LABEL_ATTEMPT: str(attempt),
    }


_RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _token_copier(template: AgentJobTemplate) -> dict[str, Any]:
    """The init container that copies the claim token where the agent can delete it."""
    return {
        "name": "token",
        "image": template.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["cp", f"{CLAIM_MOUNT}/{TOKEN_KEY}", CLAIM_FILE],
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        "securityContext": dict(_RESTRICTED),
        "volumeMounts": [
            {"name": "claim-token", "mountPath": CLAIM_MOUNT, "readOnly": True},
            {"name": "agent-token", "mountPath": CLAIM_DIR},
        ],
    }


def _container(template: AgentJobTemplate, name: str) -> dict[str, Any]:
    timeout = format_duration(timedelta(seconds=template.job_timeout_s))
    args = [
        "agent", "--server", template.server_url, "--token-file", CLAIM_FILE,
        "--agent-id", name, "--once", "--workspace", WORKSPACE, "--job-timeout", timeout,
    ]  # fmt: skip
    return {
        "name": "agent",
        "image": template.image,
        "imagePullPolicy": "IfNotPresent",
        # args, not command: the image's tini entrypoint reaps the build's processes
        "args": args,
        "workingDir": WORKSPACE,
        "resources": {
            "requests": {"cpu": template.cpu, "memory": template.memory},
            "limits": {"cpu": template.cpu_limit, "memory": template.memory_limit},
        },
        "securityContext": dict(_RESTRICTED),
        "volumeMounts": [
            {"name": "agent-token", "mountPath": CLAIM_DIR},
            {"name": "workspace", "mountPath": WORKSPACE},
            {"name": "home", "mountPath": HOME},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108  (an emptyDir of this pod alone)
        ],
    }


def _pod_spec(template: AgentJobTemplate, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # builds run untrusted code: no Kubernetes token, no service-link variables
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 60,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": AGENT_UID,
            "runAsGroup": AGENT_UID,
            "fsGroup": AGENT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [_token_copier(template)],
        "containers": [_container(template, name)],
        "volumes": [
            {"name": "claim-token", "secret": {"secretName": name, "defaultMode": 0o440}},
            {"name": "agent-token", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "workspace", "emptyDir": {"sizeLimit": "10Gi"}},
            {"name": "home", "emptyDir": {"sizeLimit": "2Gi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}},
        ],
    }
    if template.service_account:
        spec["serviceAccountName"] = template.service_account
    if template.node_selector:
        spec["nodeSelector"] = dict(template.node_selector)
    return spec


def agent_job(template: AgentJobTemplate, job_id: str, attempt: int) -> dict[str, Any]:
    """The batch/v1 Job that starts one agent for ``job_id``'s attempt ``attempt``.

    Raises:
        InvalidJobIdError: ``job_id`` is not a UUID.
    """
    name = agent_job_name(job_id, attempt)
    labels = agent_labels(job_id, attempt)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": template.namespace, "labels": labels},
        "spec": {
            # a crashed agent is not restarted: the lease expiry requeues its job
            "backoffLimit": 0,
            "activeDeadlineSeconds": template.job_timeout_s + DEADLINE_MARGIN_S,
            "ttlSecondsAfterFinished": template.ttl_seconds,
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec(template, name)},
        },
    }


def claim_token_secret(
    template: AgentJobTemplate, job_id: str, attempt: int, *, token: str, owner_uid: str
) -> dict[str, Any]:
    """The v1 Secret holding the claim token of ``job_id``'s attempt, owned by its agent Job.

    It has the Job's name (the pod's volume refers to it) and an owner reference to the Job, so
    deleting the Job, or its TTL running out, deletes the Secret with it.

    Raises:
        InvalidJobIdError: ``job_id`` is not a UUID.
    """
    name = agent_job_name(job_id, attempt)
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": owner_uid}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": template.namespace,
            "labels": agent_labels(job_id, attempt),
            "ownerReferences": [owner],
        },
        "type": "Opaque",
        "immutable": True,
        "stringData": {TOKEN_KEY: token},
    }
