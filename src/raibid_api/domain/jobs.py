"""The job as the API and the queue see it: ids, statuses, events, filters and the clock (pure)."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NewType, Protocol

from raibid_api.errors import InvalidJobIdError

JobId = NewType("JobId", str)
REPO_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
"""A repository's ``owner/name``, as jobs and deliveries name it."""
Job = dict[str, Any]
"""A job as JSON (docs/architecture.md): what `GET /jobs/{id}` returns and the queue carries."""


class JobStatus(StrEnum):
    """Where a job is in its lifecycle (docs/architecture.md, "Job lifecycle")."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether nothing can leave this status."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELLED})


class JobEvent(StrEnum):
    """What made a job."""

    PUSH = "push"
    TAG = "tag"
    PULL_REQUEST = "pull_request"
    MANUAL = "manual"
    RETRY = "retry"


INT_FIELDS = frozenset({"pull_request", "exit_code", "attempt"})
FLOAT_FIELDS = frozenset({"duration"})
JOB_FIELDS = (
    "id", "status", "repo", "clone_url", "ref", "branch", "tag", "commit", "event", "forge",
    "delivery_id", "pull_request", "author", "pusher", "message", "created_at", "started_at",
    "finished_at", "duration", "exit_code", "agent_id", "attempt", "retry_of", "reason",
    "request_id",
)  # fmt: skip


def parse_job_id(text: str) -> JobId:
    """Return the canonical form of a job id, or raise `InvalidJobIdError`."""
    if len(text) != 36:
        raise InvalidJobIdError(f"job id must be a UUID, got {len(text)} characters")
    try:
        return JobId(str(uuid.UUID(text)))
    except ValueError:
        raise InvalidJobIdError("job id must be a UUID") from None


def content_fingerprint(job: Job) -> str:
    """What a job builds (repo, event, ref, commit) as a digest: equal for duplicate deliveries."""
    what = "\x1f".join(str(job.get(key) or "") for key in ("repo", "event", "ref", "commit"))
    return hashlib.sha256(what.encode()).hexdigest()


def new_job_id() -> JobId:
    """A fresh random job id."""
    return JobId(str(uuid.uuid4()))


def job_links(public_url: str, job_id: str) -> dict[str, str]:
    """The `links` of a job: its API resource, its log, and the dashboard page forges link to."""
    base = f"{public_url}/jobs/{job_id}"
    return {"self": base, "logs": f"{base}/logs", "web": f"{public_url}/ui/jobs/{job_id}"}


def format_time(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, as every timestamp in the API is written."""
    # time.strftime over gmtime: half the cost of a datetime, on every job and journal entry
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def parse_time_ms(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 timestamp written by `format_time`."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class Clock(Protocol):
    """Where the current time comes from; tests pass a clock they move by hand."""

    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        ...


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class JobFilter:
    """Which jobs `GET /jobs` lists; every field set narrows the result."""

    status: JobStatus | None = None
    repo: str | None = None
    branch: str | None = None
    event: JobEvent | None = None
    since_ms: int | None = None

    def fingerprint(self) -> str:
        """A stable text naming this filter, bound into every cursor issued for it."""
        return json.dumps([self.status, self.repo, self.branch, self.event, self.since_ms])


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing."""

    jobs: list[Job]
    next_cursor: str | None
    total: int


@dataclass(frozen=True)
class AttemptGuard:
    """The attempt a transition is meant for: its job token, and when its lease must have ended."""

    token_hash: str
    lease_ended_by: int | None = None


@dataclass(frozen=True)
class Delivery:
    """The forge delivery a job came from, for redelivery dedup."""

    forge: str
    delivery_id: str


@dataclass(frozen=True)
class Supersession:
    """A new job's line of work (its repo's branch or pull request), and how it ends the last."""

    repo: str
    line: str
    reason: str
    cancel_running: bool = False
    """A running job it supersedes is to be cancelled too (by the caller, after the step)."""
