"""The agent's side of the agent protocol (docs/architecture.md): claim, heartbeat, logs, complete.

Every call is retried with exponential backoff and jitter on connection errors, 5xx and 429 until
its deadline, and never on another 4xx: those mean this request can never succeed. A job call the
server refuses because the job is no longer this agent's (401, 403, 404, or a 409 other than a log
offset gap) raises `LeaseLostError`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from raibid_api.agent.runner import Outcome
from raibid_api.config import describe_validation_error
from raibid_api.errors import (
    AuthenticationError,
    ConflictError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RaibidError,
    ServiceUnavailableError,
)

logger = structlog.get_logger()

MAX_HEARTBEAT_WAIT = 60.0  # the longest `wait` the server takes
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_LEASE_LOST_STATUSES = frozenset({401, 403, 404, 409})


class AgentProtocolError(RaibidError):
    """The server answered something the agent protocol does not allow (a bug on either side)."""

    code = "agent_protocol"


class LeaseLostError(ConflictError):
    """The server no longer takes this job token: the job was re-queued, completed or expired."""

    code = "lease_lost"


class LogOffsetGapError(ConflictError):
    """A log batch started past the end of the job's log; ``expected_offset`` is where it ends."""

    code = "log_offset_gap"

    def __init__(self, expected_offset: int) -> None:
        super().__init__(f"log offset gap; the server expects offset {expected_offset}")
        self.expected_offset = expected_offset


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling to a cap."""

    initial: float = 0.1
    maximum: float = 5.0
    multiplier: float = 2.0

    def delays(self) -> Iterator[float]:
        """An endless series of delays, in seconds."""
        delay = self.initial
        while True:
            yield delay / 2 + random.uniform(0, delay / 2)  # noqa: S311  (jitter, not crypto)
            delay = min(delay * self.multiplier, self.maximum)


class _JobFields(BaseModel):
    """The fields of the Job JSON the agent cannot work without."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    clone_url: str = Field(min_length=1)
    commit: str | None = Field(default=None, min_length=1)
    ref: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _commit_or_ref(self) -> _JobFields:
        if self.commit is None and self.ref is None:
            raise ValueError("the job names neither a commit nor a ref")
        return self


class _ClaimBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job: dict[str, Any]
    token: str = Field(min_length=1)
    lease_expires_at: datetime
    lease_seconds: float | None = Field(default=None, gt=0)
    log_offset: int = Field(default=0, ge=0)


@dataclass(frozen=True)
class ClaimedJob:
    """A job this agent holds: the Job JSON (docs/architecture.md), its job token and its lease.

    ``lease_seconds`` is the lease length: the server's ``lease_seconds`` when it sends one, else
    the time left until ``lease_expires_at`` by this machine's clock. ``log_offset`` is where
    this attempt's log lines start (0 unless the server says otherwise).
    """

    job: Mapping[str, Any]
    token: str
    lease_expires_at: datetime
    lease_seconds: float
    log_offset: int = 0

    @property
    def job_id(self) -> str:
        """The job's id."""
        return str(self.job["id"])


class AgentClient:
    """HTTP client of one agent process, shared by its loops; use as ``async with``.

    ``retried`` counts the requests sent again after a failure (for logs and tests).
    """

    def __init__(
        self,
        server_url: str,
        agent_token: str,
        *,
        retry: RetryPolicy | None = None,
        call_deadline: float = 30.0,
        request_timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._agent_token = agent_token
        self._retry = retry or RetryPolicy()
        self._call_deadline = call_deadline
        self._request_timeout = request_timeout
        self._http = httpx.AsyncClient(
            base_url=server_url.rstrip("/"), timeout=request_timeout, transport=transport
        )
        self.retried = 0

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def claim(self, agent_id: str, labels: Sequence[str], wait: float) -> ClaimedJob | None:
        """Long-poll for a job for up to ``wait`` seconds; None when none came (204).

        Raises:
            AuthenticationError: the agent token is refused (401).
            PermissionDeniedError: the token lacks the ``agent`` scope (403).
            ServiceUnavailableError: the server did not answer before the deadline.
        """
        body = {"agent_id": agent_id, "labels": list(labels), "wait": wait}
        response = await self._call(
            "/agent/claim", self._agent_token, body, read_timeout=wait + self._request_timeout
        )
        if response.status_code == 204:
            return None
        if response.status_code == 401:
            raise AuthenticationError("the server refused the agent token")
        if response.status_code == 403:
            raise PermissionDeniedError("the agent token lacks the agent scope")
        _expect_success(response)
        return _claimed(response)

    async def heartbeat(
        self, job_id: str, token: str, *, wait: float = 0.0, deadline: float | None = None
    ) -> bool:
        """Extend the job's lease; True when the job was cancelled and must stop.

        With ``wait`` (at most `MAX_HEARTBEAT_WAIT`), the server extends the lease at once and
        holds the answer until the job is cancelled or ends, or ``wait`` seconds pass (a server
        that does not hold heartbeats answers at once).

        Raises:
            LeaseLostError: the job is no longer this agent's.
            ServiceUnavailableError: the server did not answer before the deadline.
        """
        wait = min(wait, MAX_HEARTBEAT_WAIT)
        body = {"wait": wait} if wait > 0 else {}
        response = await self._job_call(
            job_id, "heartbeat", token, body, deadline, read_timeout=wait + self._request_timeout
        )
        return bool(_json(response).get("cancel", False))

    async def record_commit(self, job_id: str, token: str, commit: str) -> str | None:
        """Tell the server which commit the job's ref was checked out at; the job's commit.

        Raises:
            LeaseLostError: the job is no longer this agent's.
            ServiceUnavailableError: the server did not answer before the deadline.
        """
        response = await self._job_call(job_id, "commit", token, {"commit": commit}, None)
        found = _json(response).get("commit")
        return found if isinstance(found, str) else None

    async def send_logs(
        self, job_id: str, token: str, offset: int, lines: Sequence[Mapping[str, str]]
    ) -> None:
        """Append ``lines`` (``{"line", "stream"}`` objects) at ``offset`` of the job's log.

        Lines the server already holds are skipped by the server, so a retried batch is not
        doubled; any 2xx means every line up to ``offset + len(lines)`` is stored.

        Raises:
            LogOffsetGapError: ``offset`` is past the end of the log (409 ``log_offset_gap``).
            PayloadTooLargeError: the batch is too large (413); send smaller ones.
            LeaseLostError: the job is no longer this agent's.
            ServiceUnavailableError: the server did not answer before the deadline.
        """
        # the batch id is the batch's place: the same batch sent again carries the same one
        body = {"offset": offset, "batch_id": f"{offset}-{len(lines)}", "lines": list(lines)}
        await self._job_call(job_id, "logs", token, body, None)

    async def complete(
        self, job_id: str, token: str, outcome: Outcome, *, deadline: float | None = None
    ) -> None:
        """Report the job's end: ``{status, exit_code, reason}``.

        Raises:
            LeaseLostError: the job is no longer this agent's, or ended with another outcome.
            ServiceUnavailableError: the server did not answer before the deadline.
        """
        body = {"status": outcome.status, "exit_code": outcome.exit_code, "reason": outcome.reason}
        await self._job_call(job_id, "complete", token, body, deadline)

    async def release(self, job_id: str, token: str, *, deadline: float | None = None) -> None:
        """Hand the job back (this agent shuts down): the server queues its next attempt now.

        Raises:
            LeaseLostError: the job is no longer this agent's (already requeued or completed).
            ServiceUnavailableError: the server did not answer before the deadline.
        """
        await self._job_call(job_id, "release", token, {}, deadline)

    async def _job_call(
        self, job_id: str, action: str, token: str, body: Mapping[str, Any],
        deadline: float | None, *, read_timeout: float | None = None,
    ) -> httpx.Response:  # fmt: skip
        response = await self._call(
            f"/agent/jobs/{job_id}/{action}", token, body, deadline, read_timeout=read_timeout
        )
        status = response.status_code
        if status == 409 and action == "logs":
            expected = _json(response).get("expected_offset")
            if isinstance(expected, int) and not isinstance(expected, bool):
                raise LogOffsetGapError(expected)
        if status == 413:
            raise PayloadTooLargeError(f"{action}: the server refused the body as too large")
        if status in _LEASE_LOST_STATUSES:
            raise LeaseLostError(f"{action}: the server refused the job token ({status})")
        _expect_success(response)
        return response

    async def _call(
        self,
        path: str,
        token: str,
        body: Mapping[str, Any],
        deadline: float | None = None,
        *,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        give_up = time.monotonic() + (deadline if deadline is not None else self._call_deadline)
        headers = {"Authorization": f"Bearer {token}"}
        timeout = httpx.Timeout(self._request_timeout, read=read_timeout or self._request_timeout)
        delays = self._retry.delays()
        while True:
            try:
                response = await self._http.post(path, json=body, headers=headers, timeout=timeout)
            except httpx.TransportError as exc:
                failure, wait = type(exc).__name__, next(delays)
            else:
                if response.status_code not in _RETRY_STATUSES:
                    return response
                failure = f"HTTP {response.status_code}"
                wait = _retry_after(response) or next(delays)
            if time.monotonic() + wait > give_up:
                raise ServiceUnavailableError(f"{path}: the server did not answer ({failure})")
            self.retried += 1
            logger.debug("agent_call_retry", path=path, failure=failure, delay=round(wait, 3))
            await asyncio.sleep(wait)


def _claimed(response: httpx.Response) -> ClaimedJob:
    try:
        body = _ClaimBody.model_validate(_json(response))
        _JobFields.model_validate(body.job)
    except ValidationError as exc:
        # The problems name fields, never values: the clone URL may carry credentials.
        problems = "; ".join(describe_validation_error(exc))
        raise AgentProtocolError(f"claim: malformed answer: {problems}") from None
    expires = body.lease_expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    lease = body.lease_seconds or (expires - datetime.now(UTC)).total_seconds()
    return ClaimedJob(body.job, body.token, expires, max(lease, 1.0), body.log_offset)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _expect_success(response: httpx.Response) -> None:
    if not response.is_success:
        error = _json(response).get("error", "")
        raise AgentProtocolError(
            f"{response.request.url.path}: unexpected HTTP {response.status_code} {error}".strip()
        )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None
