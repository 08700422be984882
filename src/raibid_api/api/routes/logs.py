"""A job's log: the whole text, or its entries as JSON."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from raibid_api.api.deps import JobServiceDep, ReadPrincipal, app_state
from raibid_api.api.schemas import ErrorOut, LogEntryOut
from raibid_api.jobs.models import parse_job_id
from raibid_api.logs.entries import log_text, render_entry

router = APIRouter(tags=["logs"])


@router.get(
    "/jobs/{job_id}/logs",
    response_model=list[LogEntryOut],
    responses={
        200: {"content": {"text/plain": {}}, "description": "the log as text (default)"},
        **{code: {"model": ErrorOut} for code in (400, 401, 403, 404, 503)},
    },
    summary="Read a job's log",
)
async def read_logs(
    job_id: str,
    request: Request,
    jobs: JobServiceDep,
    _: ReadPrincipal,
    tail: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    """The log as `text/plain`, or its entries (lines and status changes) as JSON."""
    job = await jobs.get(parse_job_id(job_id))
    events = app_state(request).events
    if tail is not None:
        entries = await events.read_last(job["id"], tail)
    else:
        entries = [entry async for entry in events.read_all(job["id"])]
    if "application/json" in request.headers.get("accept", ""):
        rendered = [render_entry(entry_id, fields) for entry_id, fields in entries]
        return Response(orjson.dumps(rendered), media_type="application/json")
    return Response(log_text(entries), media_type="text/plain; charset=utf-8")
