"""What the cluster reports about agent Jobs and their pods, read into plain values (pure).

The dicts are the objects as the Kubernetes API serialises them (batch/v1 Job, v1 Pod).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from raibid_api.dispatch.manifests import LABEL_ATTEMPT, LABEL_JOB_ID, POD_JOB_NAME_LABEL

# Container waiting reasons that do not clear by themselves soon: the agent cannot start.
STUCK_REASONS = frozenset(
    {
        "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
        "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
    }
)  # fmt: skip

Obj = Mapping[str, Any]


class Phase(StrEnum):
    """Where an agent Job is."""

    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DELETING = "deleting"


@dataclass(frozen=True)
class AgentJob:
    """One agent Job as the cluster reports it."""

    name: str
    uid: str
    job_id: str | None
    attempt: int | None
    phase: Phase
    finished_ms: int | None = None
    reason: str | None = None

    @property
    def is_finished(self) -> bool:
        """Whether the Job has succeeded or failed (and is not being deleted)."""
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED)


def _time_ms(text: object) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _terminal_condition(status: Obj) -> Obj | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return dict(condition)
    return None


def _attempt(labels: Obj) -> int | None:
    text = labels.get(LABEL_ATTEMPT)
    return int(text) if isinstance(text, str) and text.isdigit() else None


def _explain(condition: Obj) -> str | None:
    reason, message = condition.get("reason"), condition.get("message")
    return ": ".join(str(part) for part in (reason, message) if part) or None


def _phase(metadata: Obj, condition: Obj | None) -> Phase:
    if metadata.get("deletionTimestamp"):
        return Phase.DELETING
    if condition is None:
        return Phase.ACTIVE
    return Phase.SUCCEEDED if condition["type"] == "Complete" else Phase.FAILED


def read_agent_job(obj: Obj) -> AgentJob:
    """The agent Job ``obj`` describes."""
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    labels = metadata.get("labels") or {}
    condition = _terminal_condition(status)
    phase = _phase(metadata, condition)
    finished = reason = None
    if condition is not None and phase is not Phase.DELETING:
        finished = _time_ms(condition.get("lastTransitionTime"))
        finished = finished or _time_ms(status.get("completionTime"))
        reason = _explain(condition) if phase is Phase.FAILED else None
    job_id = labels.get(LABEL_JOB_ID)
    return AgentJob(
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        job_id=str(job_id) if job_id else None,
        attempt=_attempt(labels),
        phase=phase,
        finished_ms=finished,
        reason=reason,
    )


def pod_job_name(pod: Obj) -> str | None:
    """The name of the Job that owns ``pod``."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    name = labels.get(POD_JOB_NAME_LABEL) or labels.get("job-name")
    return str(name) if name else None


def pod_uid(pod: Obj) -> str:
    """The pod's uid (its name when the object carries none)."""
    metadata = pod.get("metadata") or {}
    return str(metadata.get("uid") or metadata.get("name", ""))


def _statuses(status: Obj) -> Iterator[Obj]:
    yield from status.get("initContainerStatuses") or ()
    yield from status.get("containerStatuses") or ()


def _with_message(reason: object, message: object) -> str:
    return f"{reason}: {message}" if message else str(reason)


def _container_problem(container: Obj, *, waiting_only: bool) -> str | None:
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in STUCK_REASONS:
        return _with_message(waiting["reason"], waiting.get("message"))
    terminated = state.get("terminated") or {}
    if waiting_only or not terminated or terminated.get("exitCode") == 0:
        return None
    reason = terminated.get("reason") or "Error"
    where = f"container {container.get('name')} {reason} (exit code {terminated.get('exitCode')})"
    return _with_message(where, terminated.get("message"))


def _unschedulable(status: Obj) -> str | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
            return _with_message("Unschedulable", condition.get("message"))
    return None


def pod_start_problem(pod: Obj) -> str | None:
    """Why a live pod's agent cannot start (image pull, missing Secret, no node), if it cannot."""
    status = pod.get("status") or {}
    for container in _statuses(status):
        problem = _container_problem(container, waiting_only=True)
        if problem:
            return problem
    return _unschedulable(status)


def pod_failure(pod: Obj) -> str | None:
    """Why a pod stopped or never ran: its own reason (eviction), a container's, or scheduling."""
    status = pod.get("status") or {}
    if status.get("reason"):
        return _with_message(status["reason"], status.get("message"))
    for container in _statuses(status):
        problem = _container_problem(container, waiting_only=False)
        if problem:
            return problem
    return _unschedulable(status)
