"""What the Kubernetes API server double says and stores: Status answers, selectors, objects.

Pure functions over the JSON the real API server reads and writes; `kube_double` serves them.
"""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from starlette.responses import JSONResponse

SCHEMA_VERSION = "1.30"  # the oldest Kubernetes the deployment supports
NOW = "2026-03-01T12:00:00Z"
NAMESPACE_MISMATCH = (
    "the namespace of the provided object does not match the namespace sent on the request"
)
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
Obj = dict[str, Any]


def status(code: int, reason: str, message: str, details: Obj | None = None) -> JSONResponse:
    """A ``kind: Status`` failure, as the API server writes it."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=code)


def job_details(name: str) -> Obj:
    return {"name": name, "group": "batch", "kind": "jobs"}


class SelectorError(ValueError):
    """A label selector this double (and the API server) cannot parse."""


def _term_matches(term: str, labels: dict[str, str]) -> bool:
    for operator in ("!=", "==", "="):
        if operator in term:
            key, value = (part.strip() for part in term.split(operator, 1))
            return (labels.get(key) == value) != (operator == "!=")
    if term.startswith("!"):
        return term[1:].strip() not in labels
    if not term or "(" in term or " " in term.strip():
        raise SelectorError(f"unable to parse requirement: {term!r}")
    return term in labels


def matches(selector: str | None, labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy an equality-based ``selector`` (None selects everything)."""
    if not selector:
        return True
    return all(_term_matches(term, labels) for term in selector.split(","))


def labels_of(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def invalid_job(body: Obj) -> JSONResponse | None:
    """The 422 ``Invalid`` answer to a Job whose name or body the API server would refuse."""
    name = str(body.get("metadata", {}).get("name", ""))
    problem = None
    if len(name) > 63 or not _DNS_LABEL.fullmatch(name):
        problem = f'metadata.name: Invalid value: "{name}": must be a DNS-1123 label'
    else:
        try:
            kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problem = f"{'.'.join(map(str, exc.path))}: {exc.message}"
    if problem is None:
        return None
    details = {
        "name": name,
        "group": "batch",
        "kind": "Job",
        "causes": [{"reason": "FieldValueInvalid", "message": problem}],
    }
    return status(422, "Invalid", f'Job.batch "{name}" is invalid: {problem}', details)


def invalid_secret(body: Obj) -> JSONResponse | None:
    """The 422 ``Invalid`` answer to a Secret the API server would refuse."""
    name = str(body.get("metadata", {}).get("name", ""))
    try:
        kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        problem = f"{'.'.join(map(str, exc.path))}: {exc.message}"
        details = {"name": name, "kind": "Secret",
                   "causes": [{"reason": "FieldValueInvalid", "message": problem}]}  # fmt: skip
        return status(422, "Invalid", f'Secret "{name}" is invalid: {problem}', details)
    return None


def stored_secret(body: Obj, resource_version: str) -> Obj:
    """``body`` as stored on create: identity, and ``stringData`` merged into base64 ``data``."""
    data = dict(body.get("data") or {})
    for key, value in (body.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    body["data"] = data
    body["metadata"] |= {
        "uid": str(uuid.uuid4()),
        "resourceVersion": resource_version,
        "creationTimestamp": NOW,
    }
    return body


def with_defaults(body: Obj, resource_version: str) -> Obj:
    """``body`` as stored on create: identity, the defaults and the labels the API adds."""
    uid = str(uuid.uuid4())
    name = body["metadata"]["name"]
    body["metadata"] |= {
        "uid": uid,
        "resourceVersion": resource_version,
        "generation": 1,
        "creationTimestamp": NOW,
    }
    spec = body["spec"]
    for key, value in (
        ("parallelism", 1),
        ("completions", 1),
        ("suspend", False),
        ("completionMode", "NonIndexed"),
        ("podReplacementPolicy", "TerminatingOrFailed"),
    ):
        spec.setdefault(key, value)
    added = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template_meta = spec["template"].setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **added}
    body["status"] = {}
    return body


def pod_of(job: Obj, container_state: Obj, phase: str, pod_status: Obj | None) -> Obj:
    """A pod the Job controller made for ``job``, its agent container in ``container_state``."""
    template = job["spec"]["template"]
    metadata = job["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{metadata['name']}-{uuid.uuid4().hex[:5]}",
            "namespace": metadata["namespace"],
            "uid": str(uuid.uuid4()),
            "labels": dict(template["metadata"]["labels"]),
            "creationTimestamp": NOW,
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
        "status": {
            "phase": phase,
            **(pod_status or {}),
            "containerStatuses": [
                {
                    "name": "agent",
                    "image": template["spec"]["containers"][0]["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": container_state,
                },
            ],
        },
    }


def finished_status(succeeded: bool, at: str, reason: str | None, message: str | None) -> Obj:
    """A Job's status once it ended, as the Job controller of Kubernetes 1.31+ writes it."""
    conditions: list[tuple[str, str | None]]
    if succeeded:
        conditions = [
            ("SuccessCriteriaMet", "CompletionsReached"),
            ("Complete", "CompletionsReached"),
        ]
        counts: Obj = {"succeeded": 1, "completionTime": at}
    else:
        conditions = [("FailureTarget", reason), ("Failed", reason)]
        counts = {"failed": 1}
    return {
        "startTime": NOW,
        "ready": 0,
        "uncountedTerminatedPods": {},
        **counts,
        "conditions": [
            {
                "type": kind,
                "status": "True",
                "lastProbeTime": at,
                "lastTransitionTime": at,
                "reason": why,
                "message": message or "",
            }
            for kind, why in conditions
        ],
    }


def write_kubeconfig(path: Path, port: int, token: str) -> Path:
    """A kubeconfig at ``path`` for an API server on loopback ``port`` (plain http, a token)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "double",
        "clusters": [{"name": "double", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "raibid-api", "user": {"token": token}}],
        "contexts": [
            {
                "name": "double",
                "context": {"cluster": "double", "user": "raibid-api", "namespace": "ci"},
            }
        ],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
