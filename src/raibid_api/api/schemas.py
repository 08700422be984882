"""The public request and response models: the OpenAPI contract clients are generated from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from raibid_api.jobs.models import JobEvent, JobStatus


class Links(BaseModel):
    """Where to find more about a job."""

    self: str
    logs: str
    web: str


class JobOut(BaseModel):
    """A CI job (DESIGN.md §4)."""

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
    links: Links


class JobPageOut(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[JobOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )
    total: int = Field(description="how many jobs match the filters in all")


class ManualTriggerIn(BaseModel):
    """A build asked for by hand."""

    model_config = ConfigDict(extra="forbid")

    repo: str = Field(min_length=3, max_length=200, examples=["acme/widgets"])
    clone_url: str = Field(min_length=1, max_length=2000)
    branch: str | None = Field(default=None, min_length=1, max_length=255)
    commit: str | None = Field(default=None, min_length=40, max_length=64)


class CancelIn(BaseModel):
    """Why a job is cancelled."""

    model_config = ConfigDict(extra="forbid")

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
