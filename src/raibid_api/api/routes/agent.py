"""The agent protocol (docs/architecture.md): claim, heartbeat, logs, complete; who is working."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from raibid_api.api.deps import (
    AgentServiceDep,
    ClaimPrincipal,
    JobToken,
    ReadPrincipal,
    StateDep,
)
from raibid_api.api.schemas import (
    AgentOut,
    ClaimIn,
    ClaimOut,
    CommitIn,
    CommitOut,
    CompleteIn,
    ErrorOut,
    HeartbeatIn,
    HeartbeatOut,
    JobId,
    LogBatchIn,
    LogBatchOut,
    QueueOut,
)
from raibid_api.domain.jobs import JobStatus, parse_job_id

router = APIRouter(tags=["agents"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _routine(request: Request) -> None:
    """Log this call at debug when it succeeds: agents make it every few seconds each."""
    request.state.access_log_level = "debug"


@router.post(
    "/agent/claim",
    response_model=ClaimOut,
    responses=_ERRORS | {204: {"description": "no job within `wait` seconds"}},
    summary="Claim a job",
)
async def claim(
    body: ClaimIn, request: Request, agents: AgentServiceDep, principal: ClaimPrincipal,
    state: StateDep,
) -> Response:  # fmt: skip
    """Long-poll up to `wait` seconds for the next job; 204 when none came.

    With a claim token (`dispatch.mode: kubernetes`), the answer is at once: the one job and
    attempt the token names while it waits, else 204 (it never will again). With an agent pod's
    ServiceAccount token (`dispatch.mode: keda`), the pod gets one job in its life: any later
    claim with its identity answers 204 at once.
    """
    grant, pod = principal.grant, principal.pod
    if grant is not None:
        found = await agents.claim_job(body.agent_id, grant.job_id, grant.attempt)
    elif pod is not None:
        remember = state.settings.dispatch.keda.pod_claim_ttl.total_seconds()
        found = await agents.claim_as_pod(
            pod.pod_uid, body.agent_id, body.labels, body.wait, request.is_disconnected,
            int(remember * 1000),
        )  # fmt: skip
    else:
        found = await agents.claim(body.agent_id, body.labels, body.wait, request.is_disconnected)
    if found is None:
        _routine(request)
        return Response(status_code=204)
    return _json({"job": found.job, "token": found.token, "log_offset": 0,
                  "lease_expires_at": found.lease_expires_at,
                  "lease_seconds": agents.lease_seconds})  # fmt: skip


@router.post(
    "/agent/jobs/{job_id}/heartbeat",
    response_model=HeartbeatOut,
    responses=_ERRORS,
    summary="Extend a lease",
)
async def heartbeat(
    job_id: JobId, request: Request, token: JobToken, agents: AgentServiceDep,
    body: HeartbeatIn | None = None,
) -> Response:  # fmt: skip
    """Keep the lease; `cancel: true` tells the agent to stop the job.

    With `wait`, the lease is extended at once and the answer waits until the job is cancelled
    or ends (then `cancel: true`), or `wait` seconds pass (at most half a lease).
    """
    _routine(request)
    wait = body.wait if body is not None else 0.0
    cancel, lease_expires_at = await agents.heartbeat(
        parse_job_id(job_id), token, wait, request.is_disconnected
    )
    return _json({"cancel": cancel, "lease_expires_at": lease_expires_at})


@router.post(
    "/agent/jobs/{job_id}/logs",
    response_model=LogBatchOut,
    responses=_ERRORS,
    summary="Append logs",
)
async def append_logs(
    job_id: JobId, body: LogBatchIn, request: Request, token: JobToken, agents: AgentServiceDep
) -> Response:
    """Append lines in order; lines the server has (by `offset`, else `batch_id`) are skipped."""
    _routine(request)
    lines = [
        ("stdout", line) if isinstance(line, str) else (line.stream, line.line)
        for line in body.lines
    ]
    count = await agents.append_logs(parse_job_id(job_id), token, body.offset, lines, body.batch_id)
    return _json({"lines": count})


@router.post(
    "/agent/jobs/{job_id}/commit",
    response_model=CommitOut,
    responses=_ERRORS,
    summary="Record the commit built",
)
async def record_commit(
    job_id: JobId, body: CommitIn, token: JobToken, agents: AgentServiceDep
) -> Response:
    """Record the commit the agent checked out, for a job made without one (a branch).

    Only the running attempt's token counts, and only once: a job that names a commit keeps it.
    The answer is the job's commit after the call.
    """
    commit = await agents.record_commit(parse_job_id(job_id), token, body.commit)
    return _json({"commit": commit})


@router.post(
    "/agent/jobs/{job_id}/complete", response_model=None, responses=_ERRORS, summary="Complete"
)
async def complete(
    job_id: JobId, body: CompleteIn, token: JobToken, agents: AgentServiceDep
) -> Response:
    """End the job; a repeat with the same outcome answers the same job."""
    job = await agents.complete(
        parse_job_id(job_id), token, JobStatus(body.status), body.exit_code, body.reason
    )
    return _json(job)


@router.post(
    "/agent/jobs/{job_id}/release", response_model=None, responses=_ERRORS, summary="Hand back"
)
async def release(job_id: str, token: JobToken, agents: AgentServiceDep) -> Response:
    """Give the running job back (the agent is shutting down, its steps killed).

    The job is queued again at once as its next attempt (or fails with `agent_lost` after the
    last of `jobs.max_attempts`), with a line in its log saying why; the token stops working.
    A job that ended meanwhile is left as it is. The answer is the job after the call.
    """
    return _json(await agents.release(parse_job_id(job_id), token))


@router.get("/agents", response_model=list[AgentOut], responses=_ERRORS, summary="List agents")
async def list_agents(agents: AgentServiceDep, _: ReadPrincipal) -> Response:
    """Every agent seen lately, its last heartbeat and its current job."""
    return _json([
        {k: a.get(k) for k in ("agent_id", "labels", "job_id", "last_seen")}
        for a in await agents.agents()
    ])  # fmt: skip


@router.get("/queue", response_model=QueueOut, responses=_ERRORS, summary="Queue depth")
async def queue(agents: AgentServiceDep, _: ReadPrincipal) -> Response:
    """Jobs waiting, jobs held by agents, and the oldest wait."""
    return _json(await agents.queue())
