"""Job status -> commit status: state table, descriptions, ranks, backoff (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raibid_api.forges.policy import ReportingPolicy
from raibid_api.forges.states import DESCRIPTION_LIMIT, commit_state, describe, report_rank
from tests.support.factories import make_job


@pytest.mark.parametrize(
    ("status", "reason", "state"),
    [
        ("pending", None, "pending"),
        ("running", None, "pending"),
        ("success", None, "success"),
        ("failed", None, "failure"),
        ("failed", "no_pipeline", "failure"),
        ("failed", "invalid_pipeline", "failure"),
        ("failed", "agent_lost", "error"),
        ("failed", "timeout", "error"),
        ("failed", "clone_failed", "error"),
        ("cancelled", "cancelled", "error"),
        ("cancelled", "superseded", "error"),
    ],
)
def test_job_status_maps_to_a_state_every_forge_takes(
    status: str, reason: str | None, state: str
) -> None:
    assert commit_state(make_job(status=status, reason=reason)) == state


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"status": "pending"}, "Queued"),
        ({"status": "pending", "attempt": 2}, "Queued again (attempt 2)"),
        ({"status": "running", "agent_id": "arm-3"}, "Running on arm-3"),
        ({"status": "success", "duration": 83.4}, "Passed in 1m 23s"),
        ({"status": "failed", "exit_code": 2, "duration": 5.0}, "Failed: exit code 2 in 5s"),
        ({"status": "failed", "reason": "agent_lost"}, "Error: the build agent was lost"),
        (
            {"status": "failed", "reason": "no_pipeline"},
            "Failed: the repository has no pipeline file",
        ),
        ({"status": "cancelled", "reason": "superseded"}, "Cancelled: superseded by a newer push"),
        ({"status": "cancelled"}, "Cancelled"),
    ],
)
def test_description_says_what_happened(fields: dict[str, Any], text: str) -> None:
    assert describe(make_job(**fields)) == text


@given(reason=st.text(max_size=500), status=st.sampled_from(["failed", "cancelled"]))
def test_description_is_one_short_line_whatever_the_reason(reason: str, status: str) -> None:
    text = describe(make_job(status=status, reason=reason or None))
    assert len(text) <= DESCRIPTION_LIMIT
    assert "\n" not in text
    assert "\r" not in text


def test_rank_grows_along_the_lifecycle_including_a_requeue() -> None:
    lifecycle = [
        make_job(status="pending"), make_job(status="running"),
        make_job(status="pending", attempt=2), make_job(status="running", attempt=2),
        make_job(status="success", attempt=2),
    ]  # fmt: skip
    ranks = [report_rank(job) for job in lifecycle]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


@pytest.mark.parametrize("status", ["success", "failed", "cancelled"])
def test_every_end_of_an_attempt_outranks_its_start(status: str) -> None:
    assert report_rank(make_job(status=status)) > report_rank(make_job(status="running"))


@pytest.mark.parametrize(
    ("attempt", "retry_after", "wait_ms"),
    [(1, None, 2_000), (2, None, 4_000), (8, None, 256_000), (9, None, 300_000),
     (500, None, 300_000), (1, 30.0, 30_000), (5, 1.0, 32_000), (1, 9_999.0, 300_000)],
)  # fmt: skip
def test_backoff_doubles_honours_retry_after_and_stays_under_the_cap(
    attempt: int, retry_after: float | None, wait_ms: int
) -> None:
    assert ReportingPolicy().backoff_ms(attempt, retry_after) == wait_ms
