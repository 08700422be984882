"""`GET /metrics`: the Prometheus text format (docs/operations.md, "Metrics")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from raibid_api.api.deps import API_TOKEN_SECURITY, state_of
from raibid_api.api.schemas import ErrorOut
from raibid_api.errors import NotFoundError
from raibid_api.observability import metrics

router = APIRouter(tags=["health"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (401, 403, 404)}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "the text format"},
        **_ERRORS,
    },
    # the read scope, unless metrics.anonymous: the route checks the token itself
    openapi_extra={"security": API_TOKEN_SECURITY},
)
async def get_metrics(request: Request) -> Response:
    """Every metric of this replica, and the queue's and jobs' counts read from Redis.

    Needs the read scope unless `metrics.anonymous` (or `auth.anonymous_read`) is set; 404
    when `metrics.enabled` is off. The
    counts from Redis are read at most once per `metrics.cache`; when Redis does not answer
    they are left out and `raibid_metrics_redis_read_ok` is 0.
    """
    state = state_of(request)
    if not state.settings.metrics.anonymous:
        state.tokens.authorize(request.headers.get("authorization"), "read")
    scrape = state.scrape
    if scrape is None:
        raise NotFoundError("metrics are off on this server (metrics.enabled)")
    await scrape.refresh()
    return Response(metrics.render(scrape.registry), media_type=metrics.CONTENT_TYPE)
