"""create_app(settings): the composition root. The lifespan builds every part and tears it down."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from fastapi_offline import FastAPIOffline

from raibid_api import __version__
from raibid_api.agent.local import LocalAgentProcess, LocalAgentSpec
from raibid_api.api.auth import TokenRegistry
from raibid_api.api.deps import AppState
from raibid_api.api.errors import install_error_handlers, internal_error_body
from raibid_api.api.limits import BodyLimitMiddleware
from raibid_api.api.routes import agent, badges, events, health, jobs, logs, metrics, web, webhooks
from raibid_api.api.routing import DirectDispatch, include_routes
from raibid_api.config import Settings
from raibid_api.dispatch.dispatcher import create_dispatcher
from raibid_api.dispatch.identity import LightkubeTokenReviewer
from raibid_api.domain.jobs import JobStatus, SystemClock
from raibid_api.embedded import EmbeddedRedis
from raibid_api.errors import ServiceUnavailableError
from raibid_api.forges.reporting import StatusReporting, consumer_name
from raibid_api.jobs.agents import AgentService, LeaseLimits
from raibid_api.jobs.cursor import CursorCodec
from raibid_api.jobs.job_metrics import count_job
from raibid_api.jobs.reaper import Reaper, ReaperLimits
from raibid_api.jobs.retention import run_retention
from raibid_api.jobs.service import JobService
from raibid_api.logs.events import EventStreams
from raibid_api.logs.fanout import LogFanout
from raibid_api.logs.follow import LogFollower
from raibid_api.logs.tokens import StreamTokens
from raibid_api.observability.health import HealthChecks
from raibid_api.observability.metrics import HttpMetricsMiddleware, ScrapeState, Snapshot
from raibid_api.observability.requests import RequestContextMiddleware
from raibid_api.storage.agent_store import AgentStore
from raibid_api.storage.connection import RedisClient, create_redis, settle_background
from raibid_api.storage.delivery_journal import DeliveryJournalStore
from raibid_api.storage.event_store import EventReader, EventStore
from raibid_api.storage.gauges import GaugeReader
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys
from raibid_api.storage.outbox import StatusOutbox
from raibid_api.storage.rate_limit import RateLimitStore
from raibid_api.storage.server_info import warn_about_redis
from raibid_api.webhooks.journal import DeliveryJournal
from raibid_api.webhooks.limits import DeliveryLimiter
from raibid_api.webhooks.replay import REPLAY_INTERVAL_S, SpoolReplayer
from raibid_api.webhooks.service import WebhookIntake
from raibid_api.webhooks.spool import DeliverySpool
from raibid_api.webhooks.supersede import AutoCancel

_log = structlog.get_logger("raibid_api")
API_ROUTERS = (jobs.router, logs.router, events.router, agent.router, badges.router)
LOCAL_AGENT = "local-agent"


def _live_logs(
    settings: Settings, redis: RedisClient, url: str | None, keys: Keys, service: JobService
) -> LogFollower:
    """Live logs over SSE: history from the shared pool, live entries from one blocking reader."""
    events = EventStore(redis, keys)
    reader = EventReader(create_redis(url, settings.redis, blocking=True), redis, keys)
    return LogFollower(
        events, LogFanout(events, reader), service.with_links,
        heartbeat_s=settings.logs.heartbeat.total_seconds(),
    )  # fmt: skip


async def _build_state(settings: Settings, redis: RedisClient, url: str | None) -> AppState:
    """Every part of the server, wired to one Redis client (at ``url``)."""
    keys = Keys(settings.redis.key_prefix)
    clock = SystemClock()
    store = JobStore(
        redis, keys, retention_s=int(settings.jobs.retention.total_seconds()),
        status_maxlen=settings.logs.status_events_max, replica_acks=settings.redis.replica_acks,
        replica_timeout_ms=int(settings.redis.replica_ack_timeout.total_seconds() * 1000),
    )  # fmt: skip
    await store.ensure_queue_group()
    await warn_about_redis(redis, settings.redis.replica_acks)
    service = JobService(
        store, clock, CursorCodec(await store.cursor_secret()),
        public_url=settings.server.base_url, clone_url_schemes=settings.jobs.clone_url_schemes,
    )  # fmt: skip
    agent_store = AgentStore(redis, keys, events_maxlen=settings.logs.max_lines)
    lease = LeaseLimits(
        lease_ms=int(settings.jobs.lease.total_seconds() * 1000),
        max_batch_lines=settings.logs.max_batch_lines,
        max_line_bytes=settings.logs.max_line_bytes,
        max_attempts=settings.jobs.max_attempts,
    )
    checks = HealthChecks()
    # ready while Redis answers and holds what the server needs, put back here when it lost it
    checks.add("redis", store.repair)
    intake, replayer = _webhook_intake(settings, redis, keys, service, clock)
    live_logs = _live_logs(settings, redis, url, keys, service)
    state = AppState(
        settings, TokenRegistry(settings.auth), service, checks,
        # a held heartbeat waits on its job's events through the live logs' one shared reader
        agents=AgentService(service, store, agent_store, clock, lease, live_logs.fanout),
        events=EventStore(redis, keys),
        live_logs=live_logs,
        store=store,
        clock=clock,
        reaper=Reaper(
            service, store, agent_store, clock,
            ReaperLimits(int(settings.jobs.timeout.total_seconds() * 1000),
                         settings.jobs.max_attempts),
        ),
        intake=intake,
        event_streams=EventStreams(live_logs),
        stream_tokens=await _stream_tokens(settings, store),
        replayer=replayer,
        status_reporting=_status_reporting(settings, redis, keys, service, clock),
    )  # fmt: skip
    if settings.dispatch.mode == "kubernetes":
        # one key for every replica: any of them verifies the claim tokens another minted
        claim_key = bytes.fromhex(await agent_store.claim_key(secrets.token_hex(32)))
        state.tokens.accept_claim_tokens(claim_key)
        state.dispatcher = create_dispatcher(settings, service, clock, claim_key)
        checks.add("kubernetes", state.dispatcher.ping)
    if settings.dispatch.mode == "keda":
        state.token_reviewer = LightkubeTokenReviewer.connect(settings)
    service.add_listener(count_job)
    if settings.metrics.enabled:
        state.scrape = ScrapeState(
            _snapshot_source(state, GaugeReader(redis, keys)),
            max_age_s=settings.metrics.cache.total_seconds(),
        )
    return state


def _snapshot_source(state: AppState, gauges: GaugeReader) -> Callable[[], Awaitable[Snapshot]]:
    """What a scrape reads: the counts in Redis, readiness, and this replica's spool."""

    async def snapshot() -> Snapshot:
        depth = state.replayer.depth if state.replayer is not None else None
        now = state.clock.now_ms()
        # Redis is ready when it answers the scrape's own read: no second round trip for a PING
        others = state.health.readiness(skip=frozenset({"redis"}))
        ready, counts = await asyncio.gather(others, gauges.read(), return_exceptions=True)
        if isinstance(ready, BaseException):
            raise ready
        if isinstance(counts, ServiceUnavailableError):
            flags = _as_flags(ready) | {"redis": False}
            return Snapshot(ready=flags, spool_depth=depth, read_at_ms=now, ok=False)
        if isinstance(counts, BaseException):
            raise counts
        return Snapshot(
            jobs_by_status=counts.jobs_by_status,
            queue_depth=counts.jobs_by_status[JobStatus.PENDING],
            claimed=counts.jobs_by_status[JobStatus.RUNNING],
            oldest_pending_created_ms=counts.oldest_pending_created_ms,
            agents=counts.agents,
            status_backlog=counts.status_backlog,
            spool_depth=depth,
            ready=_as_flags(ready) | {"redis": True},
            read_at_ms=now,
        )

    return snapshot


def _as_flags(checks: dict[str, str]) -> dict[str, bool]:
    return {name: result == "ok" for name, result in checks.items()}


async def _stream_tokens(settings: Settings, store: JobStore) -> StreamTokens:
    """Stream tokens signed with the configured secret, else with one every replica shares."""
    configured = settings.auth.stream_token_secret
    secret = (
        configured.get_secret_value().encode() if configured else await store.stream_token_secret()
    )
    return StreamTokens(secret, settings.logs.stream_token_ttl.total_seconds(), time.time)


def _webhook_intake(
    settings: Settings, redis: RedisClient, keys: Keys, jobs: JobService, clock: SystemClock
) -> tuple[WebhookIntake, SpoolReplayer | None]:
    """The webhook intake, and its spool's replay loop (None when the spool is off)."""
    hooks = settings.webhooks
    journal = DeliveryJournalStore(
        redis, keys, retention_s=int(settings.jobs.retention.total_seconds())
    )
    limiter = DeliveryLimiter(
        RateLimitStore(redis, keys), hooks.rate_limit_per_minute, clock,
        deadline_s=hooks.rate_limit_deadline.total_seconds(),
    )  # fmt: skip
    spool = DeliverySpool(hooks.spool_dir, hooks.spool_max_bytes) if hooks.spool_dir else None
    if spool is not None:
        spool.open()
    intake = WebhookIntake(
        hooks, jobs, journal=DeliveryJournal(journal, clock), limiter=limiter,
        auto_cancel=AutoCancel(jobs, hooks), spool=spool, clock=clock,
    )  # fmt: skip
    return intake, SpoolReplayer(intake, spool) if spool is not None else None


def _status_reporting(
    settings: Settings, redis: RedisClient, keys: Keys, jobs: JobService, clock: SystemClock
) -> StatusReporting | None:
    """Commit statuses back to the forges that have a URL and a token (none: nothing runs)."""
    outbox = StatusOutbox(
        redis, keys, consumer=consumer_name(),
        record_ttl_s=int(settings.jobs.retention.total_seconds()) + 3600,
    )  # fmt: skip
    reporting = StatusReporting.from_settings(settings.forges, outbox, jobs, clock)
    if reporting is not None:
        jobs.add_listener(reporting.listener)
    return reporting


def _local_agent(state: AppState) -> LocalAgentProcess:
    """The built-in agent of `dispatch.mode: local`: a child process speaking HTTP to this server.

    Its token is made here, for this process's life only; the server must listen on
    ``server.host``:``server.port`` (the address `serve` bound).
    """
    token = secrets.token_urlsafe(32)
    state.tokens.add(LOCAL_AGENT, token, frozenset({"agent"}))
    settings = state.settings
    spec = LocalAgentSpec(
        settings.server.local_url, token, LOCAL_AGENT,
        concurrency=settings.dispatch.local_concurrency,
        workspace=settings.dispatch.local_workspace,
        job_timeout_s=settings.jobs.timeout.total_seconds(),
    )  # fmt: skip
    return LocalAgentProcess(spec)


def _background_work(state: AppState) -> list[Coroutine[Any, Any, object]]:
    """The loops every replica runs beside the HTTP server until shutdown."""
    interval = state.settings.jobs.reaper_interval.total_seconds()
    work: list[Coroutine[Any, Any, object]] = [
        run_retention(state.store, state.clock, interval),
        state.reaper.run(interval),
        state.live_logs.run(),
        state.intake.journal.run(),
    ]
    if state.replayer is not None:
        work.append(state.replayer.run(REPLAY_INTERVAL_S))
    if state.status_reporting is not None:
        work.extend(state.status_reporting.loops())
    if state.dispatcher is not None:
        work.append(state.dispatcher.run())
    if state.settings.dispatch.mode == "local":
        state.local_agent = _local_agent(state)
        work.append(state.local_agent.run())
    return work


async def _stop(tasks: list[asyncio.Task[object]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    embedded: EmbeddedRedis | None = None
    url: str | None = None  # None: through Sentinel
    if settings.redis.url is not None:
        url = settings.redis.url.get_secret_value()
    elif not settings.redis.external:
        embedded = await asyncio.to_thread(
            EmbeddedRedis(settings.redis.data_dir, settings.redis.binary).start
        )
        _log.info("embedded redis started", url=embedded.url, data_dir=str(settings.redis.data_dir))
        url = embedded.url
    redis = create_redis(url, settings.redis)
    try:
        state = await _build_state(settings, redis, url)
        app.state.raibid = state
        tasks = [asyncio.create_task(work) for work in _background_work(state)]
        try:
            yield
        finally:
            await _stop(tasks)
            if state.token_reviewer is not None:
                await state.token_reviewer.close()
    finally:
        await settle_background()
        await redis.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        if getattr(app.state, "tracer_provider", None) is not None:
            from raibid_api.observability.tracing import stop_tracing

            await asyncio.to_thread(stop_tracing, app.state.tracer_provider)


def create_app(settings: Settings) -> FastAPI:
    """The ASGI application for ``settings``; nothing connects until its lifespan starts."""
    # /docs and /redoc load Swagger UI and ReDoc from the package's own copy, not from a CDN:
    # clusters often have no way out to the internet
    app = FastAPIOffline(
        static_url="/docs/static",
        title="raibid-api",
        version=__version__,
        description="Orchestration server of raibid-ci: webhooks in, jobs on a Redis Stream, "
        "live logs out. Every error answers `{error, message, request_id}`.",
        lifespan=_lifespan,
        default_response_class=ORJSONResponse,
        # no OpenTelemetry here: it probed for global providers on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.add_middleware(
        DirectDispatch, routes=include_routes(app, API_ROUTERS, webhooks.router, web.router)
    )
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.server.max_body_bytes,
        limits=dict.fromkeys(
            (webhooks.receive_webhook, webhooks.explain_webhook), settings.webhooks.max_body_bytes
        ),
    )
    quiet_paths = frozenset({"/health", "/ready", "/metrics"})
    traces_url = settings.tracing.traces_url(os.environ)
    app.add_middleware(
        RequestContextMiddleware,
        error_body=internal_error_body,
        skip_paths=quiet_paths,
        on_request_id=_trace(app, traces_url, quiet_paths) if traces_url else None,
    )
    if settings.metrics.enabled:
        app.add_middleware(HttpMetricsMiddleware)
    return app


def _trace(app: FastAPI, traces_url: str, quiet_paths: frozenset[str]) -> Callable[[str], None]:
    """Export spans to ``traces_url``; the hook that tags each request's span with its id.

    A server span per request and a span per Redis call. Imported only here, so a server without
    an endpoint loads none of OpenTelemetry.
    """
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from raibid_api.observability.tracing import start_tracing, tag_request_id

    provider = start_tracing(traces_url, __version__)
    app.state.tracer_provider = provider
    # outside every other middleware: the request middleware runs within the server span
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=",".join(f"{p}$" for p in quiet_paths)
    )
    _log.info("tracing on", traces_url=traces_url)
    return tag_request_id
