"""Reading agent Jobs and pods as the Kubernetes API serialises them."""

from __future__ import annotations

from typing import Any

import pytest

from raibid_api.dispatch.observed import (
    Phase,
    pod_failure,
    pod_job_name,
    pod_start_problem,
    read_agent_job,
)

JOB_ID = "3f2a9c1e-7b4d-4c55-8e0f-0123456789ab"
AT = "2026-03-01T12:00:00Z"
AT_MS = 1_772_366_400_000


def job(status: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "raibid-agent-3f2a9c1e-7b4d-1",
            "uid": "5d1c6f2e-0000-4000-8000-000000000001",
            "labels": {"raibid-ci/job-id": JOB_ID, "raibid-ci/attempt": "1"},
            **metadata,
        },
        "spec": {},
        "status": status,
    }


def condition(kind: str, reason: str, message: str = "") -> dict[str, str]:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": AT,
        "lastTransitionTime": AT,
        "reason": reason,
        "message": message,
    }


def pod(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "raibid-agent-3f2a9c1e-7b4d-1-x7k2p",
            "uid": "p-1",
            "labels": {"batch.kubernetes.io/job-name": "raibid-agent-3f2a9c1e-7b4d-1"},
        },
        "status": status,
    }


def container(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "containerStatuses": [
            {
                "name": "agent",
                "state": state,
                "ready": False,
                "restartCount": 0,
                "image": "i",
                "imageID": "",
            }
        ]
    }


def test_job_without_a_terminal_condition_is_active() -> None:
    seen = read_agent_job(job({"active": 1, "startTime": AT}))
    assert seen.phase is Phase.ACTIVE
    assert (seen.job_id, seen.attempt, seen.finished_ms) == (JOB_ID, 1, None)


def test_job_on_its_way_to_failing_is_still_active() -> None:
    # Kubernetes 1.31+ sets FailureTarget while the pods terminate, Failed after
    seen = read_agent_job(job({"conditions": [condition("FailureTarget", "BackoffLimitExceeded")]}))
    assert seen.phase is Phase.ACTIVE


def test_complete_job_succeeded_at_its_condition_time() -> None:
    seen = read_agent_job(
        job(
            {
                "succeeded": 1,
                "completionTime": AT,
                "conditions": [
                    condition("SuccessCriteriaMet", "CompletionsReached"),
                    condition("Complete", "CompletionsReached"),
                ],
            }
        )
    )
    assert seen.phase is Phase.SUCCEEDED
    assert seen.finished_ms == AT_MS
    assert seen.reason is None


def test_failed_job_carries_its_condition_reason_and_message() -> None:
    seen = read_agent_job(
        job(
            {
                "failed": 1,
                "conditions": [
                    condition(
                        "Failed",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    )
                ],
            }
        )
    )
    assert seen.phase is Phase.FAILED
    assert seen.finished_ms == AT_MS
    assert seen.reason == "DeadlineExceeded: Job was active longer than specified deadline"


def test_job_being_deleted_is_neither_active_nor_finished() -> None:
    seen = read_agent_job(
        job({"conditions": [condition("Complete", "CompletionsReached")]}, deletionTimestamp=AT)
    )
    assert seen.phase is Phase.DELETING
    assert not seen.is_finished


def test_job_without_raibid_labels_has_no_job_id_or_attempt() -> None:
    seen = read_agent_job({"metadata": {"name": "x", "labels": {"raibid-ci/attempt": "two"}}})
    assert (seen.job_id, seen.attempt) == (None, None)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("ImagePullBackOff", 'Back-off pulling image "ghcr.io/raibid-ci/raibid-api:9.9.9"'),
        ("ErrImagePull", "rpc error: code = NotFound desc = failed to pull and unpack image"),
        ("CreateContainerConfigError", 'secret "raibid-agent-token" not found'),
    ],
)
def test_waiting_container_that_cannot_start_is_a_start_problem(reason: str, message: str) -> None:
    stuck = pod(
        {"phase": "Pending", **container({"waiting": {"reason": reason, "message": message}})}
    )
    assert pod_start_problem(stuck) == f"{reason}: {message}"


def test_container_creating_is_no_problem() -> None:
    starting = pod({"phase": "Pending", **container({"waiting": {"reason": "ContainerCreating"}})})
    assert pod_start_problem(starting) is None
    assert pod_failure(starting) is None


def test_unschedulable_pod_is_a_start_problem() -> None:
    pending = pod(
        {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient cpu.",
                }
            ],
        }
    )
    assert (
        pod_start_problem(pending) == "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."
    )


def test_oom_killed_container_explains_the_failure_with_its_exit_code() -> None:
    killed = pod(
        {"phase": "Failed", **container({"terminated": {"reason": "OOMKilled", "exitCode": 137}})}
    )
    assert pod_failure(killed) == "container agent OOMKilled (exit code 137)"
    assert pod_start_problem(killed) is None


def test_evicted_pod_explains_the_failure_with_its_own_reason() -> None:
    evicted = pod(
        {
            "phase": "Failed",
            "reason": "Evicted",
            "message": "The node was low on resource: ephemeral-storage.",
        }
    )
    assert pod_failure(evicted) == "Evicted: The node was low on resource: ephemeral-storage."


def test_container_that_exited_zero_is_no_failure() -> None:
    done = pod(
        {"phase": "Succeeded", **container({"terminated": {"reason": "Completed", "exitCode": 0}})}
    )
    assert pod_failure(done) is None


def test_pod_names_its_job_by_the_controller_label() -> None:
    assert pod_job_name(pod({})) == "raibid-agent-3f2a9c1e-7b4d-1"
    assert pod_job_name({"metadata": {"labels": {"job-name": "older"}}}) == "older"
    assert pod_job_name({"metadata": {}}) is None
