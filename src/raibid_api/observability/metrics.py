"""The server's Prometheus metrics: every one is declared here (docs/operations.md lists them).

The counters and histograms are process-wide, in this module's own `REGISTRY` (not the client
library's global one), and the parts that count call the small functions below. The values read
from Redis at scrape time (queue depth, jobs by status) are not here: `ScrapeState` holds the last
snapshot the `/metrics` route fetched, and `StateCollector` renders it.

Label values are bounded: routes are templates (``/jobs/{job_id}``), never paths; methods,
events and reasons outside a known set are ``other``. Children of the labelled metrics are looked
up once and kept (``labels()`` costs a lock and a dict lookup, on every request otherwise).
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

# no `_created` series: nothing here reads them, and they would double a scrape's size (the
# library leaves this function unannotated: typed here as what it is)
_disable_created: Callable[[], None] = disable_created_metrics
_disable_created()
REGISTRY = CollectorRegistry(auto_describe=False)
ProcessCollector(namespace="raibid", registry=REGISTRY)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# request latencies: a millisecond up to ten seconds
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# job phases: a tenth of a second up to the default job timeout (an hour) and beyond
_JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_EVENTS = frozenset(
    {"push", "create", "delete", "pull_request", "pull_request_sync", "ping", "release", "tag"}
)
JOB_STATUSES = ("pending", "running", "success", "failed", "cancelled")
JOB_EVENTS = frozenset({"push", "tag", "pull_request", "manual", "retry"})
JOB_REASONS = frozenset(
    {"timeout", "agent_lost", "clone_failed", "superseded", "cancelled", "step_failed",
     "no_pipeline", "invalid_pipeline", "shutdown"}
)  # fmt: skip
STAGES = ("webhook_to_queued", "queued_to_claimed", "claimed_to_first_log", "first_log_to_finished")

WEBHOOK_DELIVERIES = Counter(
    "raibid_webhook_deliveries",
    "Webhook deliveries, by forge, event and decision (created, duplicate, ignored, filtered, "
    "rejected, spooled).",
    ["forge", "event", "decision"], registry=REGISTRY,
)  # fmt: skip
SPOOL_REPLAYS = Counter(
    "raibid_webhook_spool_replays",
    "Spooled webhook deliveries replayed into Redis (replayed) or set aside as unusable.",
    ["outcome"], registry=REGISTRY,
)  # fmt: skip
JOBS_CREATED = Counter(
    "raibid_jobs_created", "Jobs created, by what made them.", ["event"], registry=REGISTRY
)
JOBS_FINISHED = Counter(
    "raibid_jobs_finished", "Jobs that ended, by final status and reason.",
    ["status", "reason"], registry=REGISTRY,
)  # fmt: skip
JOB_DURATION = Histogram(
    "raibid_job_duration_seconds", "Time from a job's claim by an agent to its end, by status.",
    ["status"], buckets=_JOB_BUCKETS, registry=REGISTRY,
)  # fmt: skip
QUEUE_WAIT = Histogram(
    "raibid_job_queue_wait_seconds", "Time from a job's creation to its claim by an agent.",
    buckets=_JOB_BUCKETS, registry=REGISTRY,
)  # fmt: skip
JOB_STAGES = Histogram(
    "raibid_job_stage_seconds",
    "The end-to-end breakdown of a job: webhook_to_queued, queued_to_claimed, "
    "claimed_to_first_log, first_log_to_finished.",
    ["stage"], buckets=(0.001, 0.01, 0.05, *_JOB_BUCKETS), registry=REGISTRY,
)  # fmt: skip
REAPER_REQUEUES = Counter(
    "raibid_reaper_requeues", "Jobs the reaper queued again because their agent was lost.",
    registry=REGISTRY,
)  # fmt: skip
SSE_CLIENTS = Gauge(
    "raibid_sse_clients", "Live log streams (SSE) this replica serves now.", registry=REGISTRY
)
LOG_LINES = Counter(
    "raibid_log_lines_ingested", "Log lines agents sent and the server stored.", registry=REGISTRY
)
LOG_BYTES = Counter(
    "raibid_log_ingested_bytes", "Bytes of log lines (UTF-8) agents sent and the server stored.",
    registry=REGISTRY,
)  # fmt: skip
STATUS_REPORTS = Counter(
    "raibid_commit_status_reports",
    "Commit status reports to the forges, by forge and outcome (sent, retry, busy, gave_up, "
    "dropped).",
    ["forge", "outcome"], registry=REGISTRY,
)  # fmt: skip
REDIS_ERRORS = Counter(
    "raibid_redis_call_errors",
    "Storage operations on Redis that failed, by operation and kind (unavailable, error).",
    ["operation", "kind"], registry=REGISTRY,
)  # fmt: skip


class _Series:
    """One labelled series of a `LoopHistogram`: counts per bucket (not cumulative), and the sum."""

    __slots__ = ("buckets", "total")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.total = 0.0


class LoopHistogram(Collector):
    """A histogram updated on the event loop's thread only: plain additions, no lock.

    prometheus-client's `Histogram` takes a lock for the sum and another for the bucket on
    every observation, and `labels()` one more: a few microseconds on each request. Every
    request and storage call is observed on the loop's thread, and a scrape renders on it too
    (the `/metrics` route), so no lock is needed: this keeps plain numbers and renders them as
    a histogram family (and, with ``counter``, a counter of the observations by one more label)
    at scrape time.
    """

    def __init__(
        self, name: str, documentation: str, labelnames: tuple[str, ...],
        buckets: tuple[float, ...], counter: tuple[str, str, str] | None = None,
    ) -> None:  # fmt: skip
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.bounds = list(buckets)
        self._bucket_names = [repr(float(b)) for b in buckets] + ["+Inf"]
        self.counter = counter
        self.series: dict[tuple[str, ...], _Series] = {}
        self.counts: dict[tuple[str, ...], int] = {}
        REGISTRY.register(self)

    def child(self, labels: tuple[str, ...]) -> _Series:
        """The series of ``labels`` (made on first use)."""
        found = self.series.get(labels)
        if found is None:
            found = self.series[labels] = _Series(len(self.bounds) + 1)
        return found

    def collect(self) -> Iterator[Metric]:
        """The histogram family, and the counter family if there is one."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, series in list(self.series.items()):
            cumulative, running = [], 0
            for name, count in zip(self._bucket_names, series.buckets, strict=True):
                running += count
                cumulative.append((name, running))
            family.add_metric(list(labels), cumulative, series.total)
        yield family
        if self.counter is not None:
            name, documentation, label = self.counter
            counter = CounterMetricFamily(name, documentation, labels=[*self.labelnames, label])
            for key, count in list(self.counts.items()):
                counter.add_metric(list(key), count)
            yield counter


HTTP = LoopHistogram(
    "raibid_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method.",
    ("route", "method"), _FAST_BUCKETS,
    counter=("raibid_http_requests",
             "HTTP requests answered, by route template, method and status.", "status"),
)  # fmt: skip
REDIS_CALLS = LoopHistogram(
    "raibid_redis_call_duration_seconds",
    "Time of one storage operation on Redis, by operation.",
    ("operation",), (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5),
)  # fmt: skip


def _bounded(value: object, known: frozenset[str]) -> str:
    text = str(value) if value else "none"
    return text if text in known or text == "none" else "other"


_requests: dict[tuple[str, str, int], tuple[_Series, tuple[str, str, str]]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request (``route``: the template it matched)."""
    key = (route, method, status)
    found = _requests.get(key)
    if found is None:
        if method not in _METHODS:
            method = "other"
        found = (HTTP.child((route, method)), (route, method, str(status)))
        if len(_requests) < 10_000:  # bounded even if the route table were not
            _requests[key] = found
    series, labels = found
    series.buckets[bisect_left(HTTP.bounds, seconds)] += 1
    series.total += seconds
    HTTP.counts[labels] = HTTP.counts.get(labels, 0) + 1


_deliveries: dict[tuple[str, str | None, str], Any] = {}


def webhook_delivery(forge: str, event: str | None, decision: str) -> None:
    """Count one webhook delivery and what the intake decided."""
    key = (forge, event, decision)
    child = _deliveries.get(key)
    if child is None:
        child = WEBHOOK_DELIVERIES.labels(forge, _bounded(event, _EVENTS), decision)
        if len(_deliveries) < 10_000:  # raw event names are keys here: bounded all the same
            _deliveries[key] = child
    child.inc()


def stage(name: str, seconds: float) -> None:
    """Observe one stage of a job's way through the system (one of `STAGES`)."""
    _stages[name].observe(max(seconds, 0.0))


_stages = {name: JOB_STAGES.labels(name) for name in STAGES}
_durations = {status: JOB_DURATION.labels(status) for status in JOB_STATUSES[2:]}


_created = {event: JOBS_CREATED.labels(event) for event in (*sorted(JOB_EVENTS), "none", "other")}


def job_created(event: object) -> None:
    """Count one new job."""
    _created[_bounded(event, JOB_EVENTS)].inc()


def job_claimed(wait_s: float) -> None:
    """Observe one job's time in the queue."""
    QUEUE_WAIT.observe(max(wait_s, 0.0))
    stage("queued_to_claimed", wait_s)


def job_finished(status: str, reason: object, duration_s: float | None) -> None:
    """Count one ended job, and how long it ran when it ran."""
    JOBS_FINISHED.labels(status, _bounded(reason, JOB_REASONS)).inc()
    if duration_s is not None:
        _durations[status].observe(max(duration_s, 0.0))


_FORGES = frozenset({"gitea", "forgejo", "github"})


def status_report(forge: str, outcome: str) -> None:
    """Count one commit status report's outcome."""
    STATUS_REPORTS.labels(_bounded(forge, _FORGES), outcome).inc()


def logs_ingested(lines: int, size: int) -> None:
    """Count a stored batch of log lines."""
    LOG_LINES.inc(lines)
    LOG_BYTES.inc(size)


class RedisCall:
    """The duration series and error counters of one storage operation, looked up once."""

    __slots__ = ("_errors", "_series", "operation")

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self._series: _Series | None = None  # made at the first call: an unused one shows nothing
        self._errors: dict[str, Any] = {}

    def observe(self, seconds: float) -> None:
        """One call took ``seconds``."""
        series = self._series
        if series is None:
            series = self._series = REDIS_CALLS.child((self.operation,))
        series.buckets[bisect_left(REDIS_CALLS.bounds, seconds)] += 1
        series.total += seconds

    def failed(self, kind: str) -> None:
        """One call failed (``unavailable``: Redis did not answer; ``error``: it refused)."""
        child = self._errors.get(kind)
        if child is None:
            child = self._errors[kind] = REDIS_ERRORS.labels(self.operation, kind)
        child.inc()


@dataclass
class Snapshot:
    """What the server reads from Redis (and its own disk) at scrape time."""

    jobs_by_status: Mapping[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    claimed: int = 0
    oldest_pending_created_ms: int | None = None
    agents: int = 0
    status_backlog: int = 0
    spool_depth: int | None = None
    ready: Mapping[str, bool] = field(default_factory=dict)
    read_at_ms: int = 0
    ok: bool = True


SnapshotSource = Callable[[], Awaitable[Snapshot]]


class ScrapeState:
    """The last `Snapshot`, fetched again once it is older than ``max_age_s``.

    Scrapes that arrive while a fetch runs share it; so do scrapes within ``max_age_s`` of one
    another (several Prometheus servers, or a curl beside one), so Redis sees at most one read
    per interval per replica.
    """

    def __init__(self, source: SnapshotSource, max_age_s: float) -> None:
        self._source = source
        self._max_age_s = max_age_s
        self._snapshot: Snapshot | None = None
        self._fetched = 0.0
        self._fetching: asyncio.Task[Snapshot] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StateCollector(self))

    @property
    def snapshot(self) -> Snapshot | None:
        """The last snapshot fetched (None before the first)."""
        return self._snapshot

    async def refresh(self) -> Snapshot:
        """A snapshot at most ``max_age_s`` old."""
        if self._snapshot is not None and time.monotonic() - self._fetched < self._max_age_s:
            return self._snapshot
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
        return await asyncio.shield(self._fetching)

    async def _fetch(self) -> Snapshot:
        try:
            self._snapshot = await self._source()
            self._fetched = time.monotonic()
            return self._snapshot
        finally:
            self._fetching = None


class StateCollector(Collector):
    """Renders the `ScrapeState`'s snapshot as gauges (true across replicas: read from Redis)."""

    def __init__(self, state: ScrapeState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        """The gauges of the last snapshot."""
        snap = self._state.snapshot
        if snap is None:
            return
        ready = GaugeMetricFamily(
            "raibid_dependency_ready",
            "1 when this replica's dependency answers its readiness check, else 0.",
            labels=["dependency"],
        )
        for name, ok in snap.ready.items():
            ready.add_metric([name], 1.0 if ok else 0.0)
        yield ready
        yield GaugeMetricFamily(
            "raibid_metrics_redis_read_ok",
            "1 when the last read of the Redis-derived gauges succeeded, else 0 (they are absent).",
            value=1.0 if snap.ok else 0.0,
        )
        if snap.spool_depth is not None:
            yield GaugeMetricFamily(
                "raibid_webhook_spool_depth",
                "Webhook deliveries waiting in this replica's spool for Redis.",
                value=snap.spool_depth,
            )
        if not snap.ok:
            return
        by_status = GaugeMetricFamily(
            "raibid_jobs", "Jobs stored, by status (all replicas).", labels=["status"]
        )
        for status in JOB_STATUSES:
            by_status.add_metric([status], snap.jobs_by_status.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "raibid_queue_depth", "Jobs queued and not yet claimed by an agent.",
            value=snap.queue_depth,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "raibid_queue_claimed", "Queue entries claimed by an agent and not yet done.",
            value=snap.claimed,
        )  # fmt: skip
        oldest = snap.oldest_pending_created_ms
        age = 0.0 if oldest is None else max(snap.read_at_ms - oldest, 0) / 1000
        yield GaugeMetricFamily(
            "raibid_queue_oldest_pending_age_seconds",
            "Age of the oldest pending job (0 when none waits).",
            value=age,
        )
        yield GaugeMetricFamily(
            "raibid_agents_known", "Agents that sent a heartbeat recently.", value=snap.agents
        )
        yield GaugeMetricFamily(
            "raibid_commit_status_backlog",
            "Commit status reports queued or waiting for a retry.",
            value=snap.status_backlog,
        )


def render(*registries: CollectorRegistry) -> bytes:
    """The Prometheus text format of `REGISTRY` and then ``registries``."""
    return b"".join(generate_latest(registry) for registry in (REGISTRY, *registries))


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HttpMetricsMiddleware:
    """Pure ASGI middleware: counts and times each HTTP request by its route template.

    The route is the one the router (or the direct dispatch) matched and left in the scope; a
    request that matched none is counted as ``unmatched``, so raw paths never become labels.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            observe_request(template, scope["method"], status, time.perf_counter() - started)
