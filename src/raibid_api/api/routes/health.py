"""Liveness and readiness probes."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from raibid_api.api.deps import StateDep
from raibid_api.api.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Liveness")
async def health(state: StateDep) -> Response:
    """The process is alive; checks no dependency."""
    body = {"status": "ok", "healthy": True, "uptime_seconds": state.health.uptime()}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "a dependency does not answer"}},
    summary="Readiness",
)
async def ready(state: StateDep) -> Response:
    """200 when every dependency answers (Redis), else 503 naming the check that failed."""
    checks = await state.health.readiness()
    ok = all(result == "ok" for result in checks.values())
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    return Response(orjson.dumps(body), 200 if ok else 503, media_type="application/json")
