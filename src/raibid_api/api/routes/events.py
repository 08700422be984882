"""`GET /events`: every job's status changes, or several jobs' logs, on one SSE connection."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from raibid_api.api.deps import JobServiceDep, ReadPrincipal, StateDep, StreamReaderDep
from raibid_api.api.routes.logs import EVENT_STREAM, SSE_HEADERS, rfc3339
from raibid_api.api.schemas import ErrorOut, EventsTokenIn, StreamTokenOut
from raibid_api.domain.jobs import Job, parse_job_id
from raibid_api.errors import InvalidInputError, NotAcceptableError
from raibid_api.jobs.service import JobService
from raibid_api.logs.events import (
    MAX_EVENT_JOBS,
    StatusFilter,
    parse_job_vector,
    parse_statuses,
)
from raibid_api.logs.sse import parse_last_event_id
from raibid_api.logs.tokens import filter_grant, jobs_grant

router = APIRouter(tags=["logs"])


def _job_ids(text: str) -> list[str]:
    ids = list(dict.fromkeys(str(parse_job_id(part.strip())) for part in text.split(",")))
    if not ids:
        raise InvalidInputError("jobs must name at least one job id", field="jobs")
    if len(ids) > MAX_EVENT_JOBS:
        raise InvalidInputError(f"jobs names at most {MAX_EVENT_JOBS} jobs", field="jobs")
    return ids


async def _jobs_of(service: JobService, ids: list[str]) -> list[Job]:
    return [await service.get(parse_job_id(job_id)) for job_id in ids]


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                EVENT_STREAM: {
                    "schema": {
                        "type": "string",
                        "description": "`status` (and, with `jobs`, `log`) events, `gap`, "
                        "`ready`, heartbeat comments; with `jobs`, `end`",
                    }
                }
            },
            "description": "every job's status changes, or the logs and statuses of `jobs`",
        },
        **{code: {"model": ErrorOut} for code in (400, 401, 403, 404, 406, 503)},
    },
    summary="Follow every job's status, or several jobs' logs, over SSE",
)
async def events(
    request: Request,
    state: StateDep,
    service: JobServiceDep,
    reader: StreamReaderDep,
    jobs: Annotated[
        str | None, Query(description=f"comma-separated job ids (at most {MAX_EVENT_JOBS})")
    ] = None,
    repo: Annotated[str | None, Query(description="only this repository (owner/name)")] = None,
    branch: Annotated[str | None, Query(description="only this branch")] = None,
    status: Annotated[str | None, Query(description="only these statuses, comma-separated")] = None,
    last_event_id: Annotated[
        str | None, Query(description="resume after this event id (the header wins)")
    ] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", description="resume after this event id")
    ] = None,
) -> Response:
    """One stream for a dashboard or a terminal: see docs/api.md, "Events".

    Only for clients that accept `text/event-stream` (`EventSource` does): the stream never ends.
    """
    if EVENT_STREAM not in request.headers.get("accept", ""):
        raise NotAcceptableError("GET /events answers only Accept: text/event-stream")
    streams = state.event_streams
    if jobs is not None:
        if repo is not None or branch is not None or status is not None:
            raise InvalidInputError("jobs cannot be combined with repo, branch or status")
        ids = _job_ids(jobs)
        reader.check(jobs_grant(ids))
        after = parse_job_vector(last_event_id_header or last_event_id, len(ids))
        async with state.live_logs.history_reads:  # clients connecting together take turns
            followed = await _jobs_of(service, ids)
        return StreamingResponse(
            streams.jobs(followed, after), media_type=EVENT_STREAM, headers=SSE_HEADERS
        )
    flt = StatusFilter(repo or None, branch or None, parse_statuses(status))
    reader.check(filter_grant(flt.canonical()))
    position = parse_last_event_id(last_event_id_header, last_event_id)
    return StreamingResponse(
        streams.statuses(flt, position), media_type=EVENT_STREAM, headers=SSE_HEADERS
    )


@router.post(
    "/events/token",
    response_model=StreamTokenOut,
    status_code=201,
    responses={code: {"model": ErrorOut} for code in (400, 401, 403, 404, 422, 503)},
    summary="Mint a stream token for /events",
)
async def mint_events_token(
    body: EventsTokenIn, state: StateDep, service: JobServiceDep, _: ReadPrincipal
) -> Response:
    """A short-lived token that reads `/events` with this filter as `?token=`."""
    if body.jobs is not None:
        if body.repo is not None or body.branch is not None or body.status is not None:
            raise InvalidInputError("jobs cannot be combined with repo, branch or status")
        ids = _job_ids(",".join(body.jobs))
        await _jobs_of(service, ids)  # an unknown job is a 404, as on the stream
        grant = jobs_grant(ids)
        shown: dict[str, object] = {"jobs": ids}
    else:
        statuses = frozenset(s.value for s in body.status or ())
        canonical = StatusFilter(body.repo or None, body.branch or None, statuses).canonical()
        grant = filter_grant(canonical)
        shown = canonical
    token, expires = state.stream_tokens.mint(grant)
    answer = {"token": token, "expires_at": rfc3339(expires), "filter": shown}
    return Response(orjson.dumps(answer), 201, media_type="application/json")
