"""create_app(settings): the composition root. The lifespan builds every part and tears it down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

from raibid_api import __version__
from raibid_api.api.auth import TokenRegistry
from raibid_api.api.deps import AppState
from raibid_api.api.errors import install_error_handlers
from raibid_api.api.limits import BodyLimitMiddleware
from raibid_api.api.routes import health, jobs
from raibid_api.config import Settings
from raibid_api.embedded import EmbeddedRedis
from raibid_api.jobs.cursor import CursorCodec
from raibid_api.jobs.models import SystemClock
from raibid_api.jobs.retention import run_retention
from raibid_api.jobs.service import JobService
from raibid_api.observability.health import HealthChecks
from raibid_api.observability.requests import RequestContextMiddleware
from raibid_api.storage.connection import create_redis
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys

_log = structlog.get_logger("raibid_api")
API_ROUTERS = (jobs.router,)


def _background_work(
    state: AppState, store: JobStore, clock: SystemClock
) -> list[Coroutine[Any, Any, None]]:
    """The loops every replica runs beside the HTTP server until shutdown."""
    interval = state.settings.jobs.reaper_interval.total_seconds()
    return [run_retention(store, clock, interval)]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    embedded: EmbeddedRedis | None = None
    if settings.redis.url is None:
        embedded = await asyncio.to_thread(EmbeddedRedis(settings.redis.data_dir).start)
        _log.info("embedded redis started", url=embedded.url, data_dir=str(settings.redis.data_dir))
        url = embedded.url
    else:
        url = settings.redis.url.get_secret_value()
    redis = create_redis(url, settings.redis)
    clock = SystemClock()
    try:
        store = JobStore(
            redis,
            Keys(settings.redis.key_prefix),
            retention_s=int(settings.jobs.retention.total_seconds()),
            events_maxlen=settings.logs.max_lines,
        )
        await store.ensure_queue_group()
        service = JobService(
            store,
            clock,
            CursorCodec(await store.cursor_secret()),
            public_url=settings.server.public_url,
            clone_url_schemes=settings.jobs.clone_url_schemes,
        )
        checks = HealthChecks()
        checks.add("redis", store.ping)
        state = AppState(settings, TokenRegistry(settings.auth), service, checks)
        app.state.raibid = state
        tasks = [asyncio.create_task(work) for work in _background_work(state, store, clock)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        await redis.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def create_app(settings: Settings) -> FastAPI:
    """The ASGI application for ``settings``; nothing connects until its lifespan starts."""
    app = FastAPI(
        title="raibid-api",
        version=__version__,
        description="Orchestration server of raibid-ci: webhooks in, jobs on a Redis Stream, "
        "live logs out. Every error answers `{error, message, request_id}`.",
        lifespan=_lifespan,
        default_response_class=ORJSONResponse,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    for router in API_ROUTERS:
        app.include_router(router)
        # the original raibid CLI calls the same routes under /api
        app.include_router(router, prefix="/api", include_in_schema=False)
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.server.max_body_bytes,
        limits={"/webhook": settings.webhooks.max_body_bytes},
    )
    app.add_middleware(
        RequestContextMiddleware, skip_paths=frozenset({"/health", "/ready", "/metrics"})
    )
    return app
