"""The workload policy of deploy/: checkov's Kubernetes checks that matter here, as plain rules.

checkov itself is not a dependency (it pins an older pytest and packaging than this project
uses), so its checks for pods are written out here under checkov's own ids. An exception is
declared the way checkov reads it, so an operator who runs checkov sees the same ones: an
annotation on the workload's metadata, ``checkov.io/skip<N>: <ID>=<reason>``.

Any test can run these rules on any object with a pod template (Deployment, StatefulSet, Job,
KEDA ScaledJob, ...): ``violations(document)`` lists what fails and is not excused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.manifests import Document, containers, pod_spec

SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")
# Kinds that run until stopped; a run-to-completion Job needs no liveness or readiness probe.
LONG_RUNNING = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
# A version tag (0.1.0, 7.4.2-alpine, v1.2) or a digest; never latest, never untagged.
PINNED_TAG = re.compile(r"^v?\d+(\.\d+)+([-+][0-9A-Za-z.-]+)?$")
HIGH_UID = 10000
MIN_REASON_WORDS = 8

PodCheck = Callable[[str, Document], bool]
ContainerCheck = Callable[[Document, Document], bool]


@dataclass(frozen=True)
class Rule:
    """One check: its checkov id, what it requires, whether the manifests may be excused."""

    id: str
    requirement: str
    pod: PodCheck | None = None
    container: ContainerCheck | None = None
    # The brief's own rules (non-root, no privilege escalation, read-only root file system,
    # resource limits, pinned images) admit no exception.
    exemptable: bool = True


def _context(spec: Document, container: Document, key: str) -> object:
    """A security setting of a container, falling back to the pod's (as Kubernetes does)."""
    value = container.get("securityContext", {}).get(key)
    return spec.get("securityContext", {}).get(key) if value is None else value


def _seccomp(spec: Document, container: Document) -> object:
    profile = _context(spec, container, "seccompProfile")
    return profile.get("type") if isinstance(profile, dict) else None


def _resource(container: Document, kind: str, name: str) -> bool:
    return name in container.get("resources", {}).get(kind, {})


def _tag(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rpartition(":")[2] if ":" in last else ""


def _secret_in_env(container: Document) -> bool:
    return any("secretKeyRef" in e.get("valueFrom", {}) for e in container.get("env", [])) or any(
        "secretRef" in e for e in container.get("envFrom", [])
    )


RULES: tuple[Rule, ...] = (
    Rule("CKV_K8S_8", "a liveness probe", container=lambda s, c: "livenessProbe" in c),
    Rule("CKV_K8S_9", "a readiness probe", container=lambda s, c: "readinessProbe" in c),
    Rule("CKV_K8S_10", "a CPU request", container=lambda s, c: _resource(c, "requests", "cpu")),
    Rule(
        "CKV_K8S_11",
        "a CPU limit",
        container=lambda s, c: _resource(c, "limits", "cpu"),
        exemptable=False,
    ),
    Rule(
        "CKV_K8S_12", "a memory request", container=lambda s, c: _resource(c, "requests", "memory")
    ),
    Rule(
        "CKV_K8S_13",
        "a memory limit",
        container=lambda s, c: _resource(c, "limits", "memory"),
        exemptable=False,
    ),
    Rule(
        "CKV_K8S_14",
        "an image pinned to a version tag (never latest or untagged) or a digest",
        container=lambda s, c: "@sha256:" in c["image"] or bool(PINNED_TAG.match(_tag(c["image"]))),
        exemptable=False,
    ),
    Rule(
        "CKV_K8S_15",
        "imagePullPolicy Always",
        container=lambda s, c: c.get("imagePullPolicy") == "Always",
    ),
    Rule(
        "CKV_K8S_16",
        "no privileged container",
        container=lambda s, c: c.get("securityContext", {}).get("privileged") is not True,
        exemptable=False,
    ),
    Rule("CKV_K8S_17", "no host PID namespace", pod=lambda k, s: not s.get("hostPID")),
    Rule("CKV_K8S_18", "no host IPC namespace", pod=lambda k, s: not s.get("hostIPC")),
    Rule("CKV_K8S_19", "no host network", pod=lambda k, s: not s.get("hostNetwork")),
    Rule(
        "CKV_K8S_20",
        "allowPrivilegeEscalation false",
        container=lambda s, c: (
            c.get("securityContext", {}).get("allowPrivilegeEscalation") is False
        ),
        exemptable=False,
    ),
    Rule(
        "CKV_K8S_22",
        "a read-only root file system",
        container=lambda s, c: c.get("securityContext", {}).get("readOnlyRootFilesystem") is True,
        exemptable=False,
    ),
    Rule(
        "CKV_K8S_23",
        "runAsNonRoot and no UID 0",
        container=lambda s, c: (
            _context(s, c, "runAsNonRoot") is True and _context(s, c, "runAsUser") != 0
        ),
        exemptable=False,
    ),
    Rule(
        "CKV_K8S_26",
        "no host port",
        container=lambda s, c: not any(p.get("hostPort") for p in c.get("ports", [])),
    ),
    Rule(
        "CKV_K8S_28",
        "every capability dropped and none added",
        container=lambda s, c: (
            c.get("securityContext", {}).get("capabilities", {}).get("drop") == ["ALL"]
            and not c.get("securityContext", {}).get("capabilities", {}).get("add")
        ),
    ),
    Rule("CKV_K8S_29", "a pod security context", pod=lambda k, s: bool(s.get("securityContext"))),
    Rule(
        "CKV_K8S_30",
        "a container security context",
        container=lambda s, c: bool(c.get("securityContext")),
    ),
    Rule(
        "CKV_K8S_31",
        "the RuntimeDefault (or a Localhost) seccomp profile",
        container=lambda s, c: _seccomp(s, c) in {"RuntimeDefault", "Localhost"},
    ),
    Rule(
        "CKV_K8S_35",
        "secrets as files, not environment variables",
        container=lambda s, c: not _secret_in_env(c),
    ),
    Rule(
        "CKV_K8S_38",
        "no service account token unless the workload calls the Kubernetes API",
        pod=lambda k, s: s.get("automountServiceAccountToken") is False,
    ),
    Rule(
        "CKV_K8S_40",
        f"a UID of at least {HIGH_UID}, clear of the host's users",
        container=lambda s, c: int(str(_context(s, c, "runAsUser") or 0)) >= HIGH_UID,
    ),
    Rule(
        "CKV_K8S_43",
        "an image pinned by digest",
        container=lambda s, c: "@sha256:" in c["image"],
    ),
)
RULE_IDS = frozenset(rule.id for rule in RULES)
PROBES = frozenset({"CKV_K8S_8", "CKV_K8S_9"})


def exemptions(document: Document) -> dict[str, str]:
    """The checks a workload's metadata excuses, with the reason given for each."""
    annotations = document.get("metadata", {}).get("annotations", {}) or {}
    found: dict[str, str] = {}
    for key, value in annotations.items():
        if SKIP_ANNOTATION.match(key):
            rule, _, reason = str(value).partition("=")
            found[rule.strip()] = reason.strip()
    return found


def failures(document: Document) -> set[str]:
    """The ids of the rules a workload fails, excused or not (empty for objects without pods)."""
    spec = pod_spec(document)
    if spec is None:
        return set()
    kind = str(document.get("kind"))
    failed: set[str] = set()
    for rule in RULES:
        if rule.id in PROBES and kind not in LONG_RUNNING:
            continue
        if rule.pod is not None and not rule.pod(kind, spec):
            failed.add(rule.id)
        if rule.container is not None and not all(
            rule.container(spec, c) for c in containers(spec)
        ):
            failed.add(rule.id)
    return failed


def violations(document: Document) -> list[str]:
    """What a workload fails without an exception that is allowed, justified and still needed."""
    failed = failures(document)
    excused = exemptions(document)
    problems = [f"{rule.id}: needs {rule.requirement}" for rule in RULES if rule.id in failed]
    problems = [p for p in problems if p.split(":")[0] not in excused]
    for rule_id, reason in excused.items():
        rule = next((r for r in RULES if r.id == rule_id), None)
        if rule is None:
            problems.append(f"{rule_id}: excused, but no such rule")
        elif not rule.exemptable:
            problems.append(f"{rule_id}: excused, but {rule.requirement} admits no exception")
        elif rule_id not in failed:
            problems.append(f"{rule_id}: excused, but the workload passes it (stale exception)")
        elif len(reason.split()) < MIN_REASON_WORDS:
            problems.append(f"{rule_id}: excused without a reason (`{rule_id}=why`)")
    return problems
