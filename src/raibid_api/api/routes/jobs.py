"""The jobs API: list, read, trigger, cancel, retry."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from raibid_api.api.deps import (
    API_TOKEN_SECURITY,
    JobServiceDep,
    ReadPrincipal,
    WritePrincipal,
    state_of,
)
from raibid_api.api.routing import DirectRoute
from raibid_api.api.schemas import (
    CancelIn,
    ErrorOut,
    JobId,
    JobOut,
    JobPageOut,
    ManualTriggerIn,
    Rfc3339,
)
from raibid_api.domain.jobs import REPO_PATTERN, JobEvent, JobFilter, JobStatus, parse_job_id
from raibid_api.jobs.service import ManualTrigger

router = APIRouter(tags=["jobs"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422, 503)
}


def _json(body: object, status: int = 200) -> Response:
    # the service already holds plain JSON data: serialise once, no response model in between
    return Response(orjson.dumps(body), status, media_type="application/json")


@router.get("/jobs", response_model=JobPageOut, responses=_ERRORS, summary="List jobs")
async def list_jobs(
    jobs: JobServiceDep,
    _: ReadPrincipal,
    status: JobStatus | None = None,
    repo: Annotated[
        str | None, Query(max_length=200, pattern=REPO_PATTERN.pattern, description="owner/name")
    ] = None,
    branch: Annotated[str | None, Query(max_length=255)] = None,
    event: JobEvent | None = None,
    since: Annotated[
        Rfc3339 | None, Query(description="RFC 3339; jobs created at or after")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Jobs matching every given filter, newest first, with an opaque cursor to the next page."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a time without an offset is read as UTC
    since_ms = int(since.timestamp() * 1000) if since is not None else None
    page = await jobs.list(JobFilter(status, repo, branch, event, since_ms), cursor, limit)
    return _json({"jobs": page.jobs, "next_cursor": page.next_cursor, "total": page.total})


async def get_job(request: Request, job_id: JobId) -> Response:
    """One job."""
    # the hottest read: a token check, one HGETALL, bytes out (a `DirectRoute`)
    state = state_of(request)
    state.tokens.authorize(request.headers.get("authorization"), "read")
    return Response(await state.jobs.get_json(parse_job_id(job_id)), media_type="application/json")


router.add_api_route(
    "/jobs/{job_id}", get_job, methods=["GET"], response_model=JobOut, responses=_ERRORS,
    summary="Get a job", route_class_override=DirectRoute,
    openapi_extra={"security": API_TOKEN_SECURITY},
)  # fmt: skip


@router.post(
    "/jobs", status_code=201, response_model=JobOut, responses=_ERRORS, summary="Trigger a build"
)
async def trigger_job(
    body: ManualTriggerIn, jobs: JobServiceDep, principal: WritePrincipal
) -> Response:
    """Create a job by hand: always a new job, never coalesced with another."""
    job = await jobs.trigger(
        ManualTrigger(body.repo, body.clone_url, body.branch, body.commit, principal.name)
    )
    return _json(job, 201)


@router.post(
    "/jobs/{job_id}/cancel", response_model=JobOut, responses=_ERRORS, summary="Cancel a job"
)
async def cancel_job(
    job_id: JobId, jobs: JobServiceDep, _: WritePrincipal, body: CancelIn | None = None
) -> Response:
    """Cancel a pending or running job; a running job's agent stops on its next heartbeat."""
    reason = body.reason if body is not None else "cancelled"
    return _json(await jobs.cancel(parse_job_id(job_id), reason))


@router.post(
    "/jobs/{job_id}/retry",
    status_code=201,
    response_model=JobOut,
    responses=_ERRORS,
    summary="Retry a job",
)
async def retry_job(job_id: JobId, jobs: JobServiceDep, principal: WritePrincipal) -> Response:
    """Build again what an ended job built; the new job names the old one in `retry_of`."""
    return _json(await jobs.retry(parse_job_id(job_id), principal.name), 201)
