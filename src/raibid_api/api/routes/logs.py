"""A job's log: the whole text, its entries as JSON, or live over Server-Sent Events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from raibid_api.api.deps import (
    EventStoreDep,
    JobServiceDep,
    LiveLogsDep,
    ReadPrincipal,
    StateDep,
    StreamReaderDep,
)
from raibid_api.api.schemas import ErrorOut, JobId, LogEntryOut, StreamTokenOut
from raibid_api.domain.jobs import parse_job_id
from raibid_api.logs.entries import log_text, with_gaps
from raibid_api.logs.sse import parse_last_event_id
from raibid_api.logs.tokens import job_grant

router = APIRouter(tags=["logs"])

EVENT_STREAM = "text/event-stream"
# proxies (nginx) would otherwise hold the stream back in their buffers
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get(
    "/jobs/{job_id}/logs",
    response_model=list[LogEntryOut],
    responses={
        200: {
            "content": {
                "text/plain": {},
                EVENT_STREAM: {
                    "schema": {
                        "type": "string",
                        "description": "`log` and `status` events, heartbeat comments, then `end`",
                    }
                },
            },
            "description": "the log as text (default), as JSON entries, or live over SSE",
        },
        **{code: {"model": ErrorOut} for code in (400, 401, 403, 404, 503)},
    },
    summary="Read a job's log",
)
async def read_logs(
    job_id: JobId,
    request: Request,
    jobs: JobServiceDep,
    events: EventStoreDep,
    live_logs: LiveLogsDep,
    reader: StreamReaderDep,
    tail: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    last_event_id: Annotated[
        str | None, Query(description="SSE: resume after this event id (the header wins)")
    ] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", description="SSE: resume after this event id")
    ] = None,
) -> Response:
    """The log as `text/plain`, its entries (lines and status changes) as JSON, or live as SSE."""
    reader.check(job_grant(str(parse_job_id(job_id))))
    if EVENT_STREAM in request.headers.get("accept", ""):
        after = parse_last_event_id(last_event_id_header, last_event_id)
        async with live_logs.history_reads:  # a thousand clients connecting take turns
            job = await jobs.get(parse_job_id(job_id))
        stream = live_logs.stream(job, after)
        return StreamingResponse(stream, media_type=EVENT_STREAM, headers=SSE_HEADERS)
    job = await jobs.get(parse_job_id(job_id))
    if tail is not None:
        entries = await events.read_last(job["id"], tail)
    else:
        entries = [entry async for entry in events.read_all(job["id"])]
    if "application/json" in request.headers.get("accept", ""):
        return Response(orjson.dumps(list(with_gaps(entries))), media_type="application/json")
    return Response(log_text(entries), media_type="text/plain; charset=utf-8")


@router.post(
    "/jobs/{job_id}/logs/token",
    response_model=StreamTokenOut,
    status_code=201,
    responses={code: {"model": ErrorOut} for code in (400, 401, 403, 404, 503)},
    summary="Mint a stream token for a job's log",
)
async def mint_log_token(
    job_id: JobId, jobs: JobServiceDep, state: StateDep, _: ReadPrincipal
) -> Response:
    """A short-lived token that reads this job's log as `?token=` (browsers' `EventSource`)."""
    job = await jobs.get(parse_job_id(job_id))
    token, expires = state.stream_tokens.mint(job_grant(str(job["id"])))
    body = {"token": token, "expires_at": rfc3339(expires), "job_id": job["id"]}
    return Response(orjson.dumps(body), 201, media_type="application/json")


def rfc3339(epoch_s: float) -> str:
    """An epoch time as RFC 3339 UTC, to the second."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
