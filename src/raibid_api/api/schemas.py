"""The public request and response models: the OpenAPI contract clients are generated from."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from raibid_api.domain.jobs import JobEvent, JobStatus

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?)?"
)


def _rfc3339_text(value: object) -> object:
    # pydantic's datetime also takes numbers (unix time): a query's timestamp is written out,
    # so `?since=0.5` is an error instead of a moment in 1970
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp, e.g. 2026-12-05T08:00:00Z")
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339_text)]
"""An RFC 3339 timestamp, or a date alone (its midnight); without an offset it is UTC."""


JobId = Annotated[
    str,
    Path(
        description="the job's UUID (anything else answers 400 `invalid_job_id`)",
        # documented, not validated here: `parse_job_id` answers with the documented error
        json_schema_extra={
            "format": "uuid",
            "pattern": "^" + "-".join(f"[0-9a-fA-F]{{{n}}}" for n in (8, 4, 4, 4, 12)) + "$",
        },
    ),
]


class StrictIn(BaseModel):
    """A request body: no field beyond the schema, and no value coerced to its field's type.

    Strict validation keeps JSON's types apart: ``true`` is not a number, ``"5"`` is not an
    integer, and an integer is a number (JSON has no other way to write ``5.0``).
    """

    model_config = ConfigDict(extra="forbid", strict=True)


class Links(BaseModel):
    """Where to find more about a job."""

    self: str
    logs: str
    web: str


class JobOut(BaseModel):
    """A CI job (docs/architecture.md, "The Job JSON")."""

    id: str = Field(description="UUID")
    status: JobStatus
    repo: str = Field(description="owner/name")
    clone_url: str
    ref: str | None = Field(description="full ref, e.g. refs/heads/main")
    branch: str | None = Field(description="short branch name; null for tags")
    tag: str | None
    commit: str | None = Field(description="full sha: 40 hex, or 64 in SHA-256 repositories")
    event: JobEvent
    forge: str | None
    delivery_id: str | None
    pull_request: int | None
    author: str | None = Field(description="the head commit's author name")
    pusher: str | None = Field(description="the forge login that pushed, or the token name")
    message: str | None = Field(description="commit subject")
    created_at: str = Field(description="RFC 3339 UTC")
    started_at: str | None
    finished_at: str | None
    duration: float | None = Field(description="seconds")
    exit_code: int | None
    agent_id: str | None
    attempt: int
    retry_of: str | None
    reason: str | None = Field(description="why the job failed or was cancelled")
    request_id: str | None = Field(
        description="the `X-Request-ID` of the request that created the job (null if none)"
    )
    links: Links


class JobPageOut(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[JobOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )
    total: int = Field(description="how many jobs match the filters in all")


class ManualTriggerIn(StrictIn):
    """A build asked for by hand."""

    repo: str = Field(min_length=3, max_length=200, examples=["acme/widgets"])
    clone_url: str = Field(min_length=1, max_length=2000)
    branch: str | None = Field(default=None, min_length=1, max_length=255)
    commit: str | None = Field(default=None, min_length=40, max_length=64)


class CancelIn(StrictIn):
    """Why a job is cancelled."""

    reason: str = Field(default="cancelled", min_length=1, max_length=200)


class ErrorOut(BaseModel):
    """Every error answer."""

    error: str = Field(description="stable machine-readable code")
    message: str
    request_id: str


class HealthOut(BaseModel):
    """Liveness."""

    status: Literal["ok"]
    healthy: bool
    uptime_seconds: float


class ReadyOut(BaseModel):
    """Readiness, with the outcome of each check."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


class ClaimIn(StrictIn):
    """An agent asking for work."""

    agent_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@-]+$")
    labels: list[str] = Field(default_factory=list, max_length=50)
    wait: float = Field(default=0, ge=0, le=60, description="seconds to wait for a job")


class ClaimOut(BaseModel):
    """A job handed to an agent."""

    job: JobOut
    token: str = Field(description="job token: Bearer credential for this job's calls")
    lease_expires_at: str
    lease_seconds: float
    log_offset: int = Field(description="where this attempt's log starts (always 0)")


class HeartbeatIn(BaseModel):
    """A heartbeat; with ``wait`` it is held open until the job stops running (a long poll)."""

    # other fields are ignored, as they were before heartbeats took a body
    model_config = ConfigDict(extra="ignore", strict=True)

    wait: float = Field(
        default=0, ge=0, le=60,
        description="seconds the answer may wait for the job to be cancelled or to end "
        "(at most half a lease); 0 answers at once",
    )  # fmt: skip


class HeartbeatOut(BaseModel):
    """What a heartbeat tells the agent."""

    cancel: bool
    lease_expires_at: str


class CommitIn(StrictIn):
    """The commit an agent checked out for a job made without one."""

    commit: str = Field(pattern=r"^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$",
                        description="full sha-1 or sha-256 of the commit")  # fmt: skip


class CommitOut(BaseModel):
    """The job's commit after the call: the one reported, or the one it already had."""

    commit: str | None


class LogLineIn(StrictIn):
    """One line of output."""

    line: str
    stream: Literal["stdout", "stderr"] = "stdout"


class LogBatchIn(StrictIn):
    """A batch of log lines; ``offset`` (or ``batch_id``) makes a retried batch idempotent."""

    offset: int | None = Field(default=None, ge=0)
    batch_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
        description="without `offset`: the same id for the same batch sent again, so that it "
        "is stored once (the server remembers the attempt's last batch id)",
    )  # fmt: skip
    lines: list[str | LogLineIn]


class LogBatchOut(BaseModel):
    """How many lines of this attempt the server holds."""

    lines: int


class CompleteIn(StrictIn):
    """How the job ended on the agent."""

    status: Literal["success", "failed"]
    exit_code: int | None = None
    reason: str | None = Field(default=None, max_length=200)


class AgentOut(BaseModel):
    """An agent the server has seen."""

    agent_id: str
    labels: list[str]
    job_id: str | None
    last_seen: str


class QueueOut(BaseModel):
    """The queue right now."""

    depth: int = Field(description="jobs waiting for an agent")
    claimed: int = Field(description="jobs an agent holds")
    oldest_waiting_seconds: float | None


class LogEntryOut(BaseModel):
    """One entry of a job's log: a line or a status change."""

    id: str | None = Field(description="null for a gap")
    event: Literal["log", "status", "gap"]
    data: dict[str, Any]


class StreamTokenOut(BaseModel):
    """A short-lived stream token, to pass as `?token=` where a header cannot be sent."""

    token: str = Field(description="opaque; valid only for what it was minted for")
    expires_at: str = Field(description="RFC 3339 UTC; checked when a stream opens")
    job_id: str | None = Field(default=None, description="the job (a log token)")
    filter: dict[str, Any] | None = Field(
        default=None, description="what the token reads on /events: jobs, or repo/branch/status"
    )


class EventsTokenIn(BaseModel):
    """What an `/events` stream token is for: some jobs, or a status filter (all optional)."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[str] | None = Field(default=None, description="job ids (the ?jobs= stream)")
    repo: str | None = None
    branch: str | None = None
    status: list[JobStatus] | None = None
