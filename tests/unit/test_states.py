from __future__ import annotations

import itertools

import pytest

from raibid_api.domain.jobs import TERMINAL_STATUSES, JobStatus
from raibid_api.domain.states import TRANSITIONS, can_leave, check_transition


def test_nothing_leaves_a_terminal_state() -> None:
    for status in TERMINAL_STATUSES:
        assert TRANSITIONS[status] == frozenset()
        assert status.is_terminal


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


@pytest.mark.parametrize(
    ("source", "target"),
    [("pending", "running"), ("pending", "cancelled"), ("running", "success"),
     ("running", "failed"), ("running", "cancelled"), ("running", "pending")],
)  # fmt: skip
def test_the_lifecycle_edges_exist(source: str, target: str) -> None:
    assert can_leave(JobStatus(source), JobStatus(target))
    check_transition(JobStatus(source), JobStatus(target))


def test_no_other_edge_exists() -> None:
    allowed = {("pending", "running"), ("pending", "cancelled"), ("running", "success"),
               ("running", "failed"), ("running", "cancelled"), ("running", "pending")}  # fmt: skip
    for source, target in itertools.product(JobStatus, JobStatus):
        if (source.value, target.value) not in allowed:
            assert not can_leave(source, target)
            with pytest.raises(ValueError, match="no transition"):
                check_transition(source, target)
