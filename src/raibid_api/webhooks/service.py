"""WebhookIntake: one delivery in, a job stored exactly once (or a spooled delivery) out.

The order of one delivery: verify and parse it (pure, `intake.read_delivery`), then in one
atomic Redis step count it against the rate limits, store its job (job, indexes, queue entry,
delivery key, content key) and cancel the pending job it supersedes (`JobService.create`),
answer, and journal it. A delivery that makes no job is only counted. The answer goes out only
after the job is in Redis, or after the delivery is on disk in the spool when Redis does not
answer in time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace

import structlog

from raibid_api.config import WebhookSettings
from raibid_api.domain.jobs import Clock, Job, JobId, format_time
from raibid_api.domain.jobs import Delivery as DeliveryKey
from raibid_api.domain.limits import RateLimit
from raibid_api.errors import RaibidError, RateLimitedError, ServiceUnavailableError
from raibid_api.jobs.service import CreateStep, JobService
from raibid_api.observability import metrics
from raibid_api.storage.scripts import CreateOutcome
from raibid_api.webhooks.events import Ignored, WebhookEvent
from raibid_api.webhooks.headers import Headers
from raibid_api.webhooks.intake import Delivery, read_delivery
from raibid_api.webhooks.journal import Decision, DeliveryJournal, JournalEntry
from raibid_api.webhooks.limits import DeliveryLimiter
from raibid_api.webhooks.outcome import (
    IntakeResult,
    adapter_for,
    decision_of,
    job_fields,
    synthetic_delivery_id,
)
from raibid_api.webhooks.registry import WebhookAdapter
from raibid_api.webhooks.spool import DeliverySpool, SpooledDelivery
from raibid_api.webhooks.supersede import AutoCancel

_log = structlog.get_logger("raibid_api.webhooks")


@dataclass(frozen=True, slots=True)
class Arrival:
    """Where and when a delivery came in, for its journal entry."""

    forge: str
    source: str
    received_ms: int
    started: float

    def elapsed_ms(self) -> float:
        """Milliseconds since handling started."""
        return round((time.perf_counter() - self.started) * 1000, 2)


class WebhookIntake:
    """The webhook intake: receive deliveries, and replay the ones spooled while Redis was away."""

    def __init__(
        self,
        settings: WebhookSettings,
        jobs: JobService,
        *,
        journal: DeliveryJournal,
        limiter: DeliveryLimiter,
        auto_cancel: AutoCancel,
        spool: DeliverySpool | None,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.journal = journal
        self.auto_cancel = auto_cancel
        self._limiter = limiter
        self._spool = spool
        self._clock = clock

    async def receive(self, forge: str, headers: Headers, body: bytes, source: str) -> IntakeResult:
        """Handle one delivery to ``/webhook/<forge>``.

        Raises:
            NotFoundError: an unknown forge.
            RaibidError: every refusal of `intake.read_delivery` (401, 400, 413, 415), and
                `RateLimitedError`; each is journaled before it is raised.
            ServiceUnavailableError: Redis is away and the spool is off or full.
        """
        adapter = adapter_for(forge)
        arrival = Arrival(forge, source, self._clock.now_ms(), time.perf_counter())
        try:
            delivery = read_delivery(adapter, headers, body, self.settings)
            if isinstance(delivery.outcome, Ignored):
                # a delivery that makes a job is counted in the step that stores it
                await self._limiter.admit(source, delivery.repo)
        except RaibidError as exc:
            raise await self._refused(arrival, adapter, headers, exc) from exc
        if delivery.delivery_id is None:
            delivery = replace(delivery, delivery_id=synthetic_delivery_id(body))
        try:
            result = await self._handle(delivery, arrival)
        except RateLimitedError as exc:
            raise await self._refused(arrival, adapter, headers, exc) from exc
        if result.outcome != "spooled":
            self.record(arrival, delivery.event_type, delivery.signature.value, result)
        return result

    async def refuse(
        self, forge: str, headers: Headers, source: str, error: RaibidError
    ) -> RaibidError:
        """Journal a delivery refused before the intake could read it (a body over the limit).

        Returns:
            the error to answer with: ``error``, or `RateLimitedError` when the source is over
            its limit.

        Raises:
            NotFoundError: an unknown forge.
        """
        adapter = adapter_for(forge)
        arrival = Arrival(forge, source, self._clock.now_ms(), time.perf_counter())
        return await self._refused(arrival, adapter, headers, error)

    async def _refused(
        self, arrival: Arrival, adapter: WebhookAdapter, headers: Headers, exc: RaibidError
    ) -> RaibidError:
        if not isinstance(exc, RateLimitedError):
            # refused deliveries count against their source too: a flood of them is limited
            try:
                await self._limiter.admit(arrival.source, None)
            except RateLimitedError as limited:
                exc = limited
        try:
            delivery_id = adapter.delivery_id(headers)
        except RaibidError:
            delivery_id = None
        signature = "mismatch" if exc.code == "signature_mismatch" else None
        entry = JournalEntry(
            received_at=format_time(arrival.received_ms),
            forge=arrival.forge,
            event=adapter.event_type(headers),
            delivery_id=delivery_id,
            signature=signature,
            decision=Decision.REJECTED,
            reason=exc.code,
            detail=exc.message,
            source=arrival.source,
            duration_ms=arrival.elapsed_ms(),
        )
        self.journal.record(entry)
        return exc

    async def _handle(self, delivery: Delivery, arrival: Arrival) -> IntakeResult:
        assert delivery.delivery_id is not None  # noqa: S101  (set by the caller)
        outcome = delivery.outcome
        if isinstance(outcome, Ignored):
            return IntakeResult(
                "ignored", delivery.delivery_id, ignored=outcome, repo=delivery.repo
            )
        limit = self._limiter.limit_for(arrival.source, outcome.repo)
        try:
            return await self.store(delivery.forge, delivery.delivery_id, outcome, limit)
        except ServiceUnavailableError as exc:
            _log.warning("redis away; spooling the webhook delivery", reason=exc.message)
        spooled = SpooledDelivery(
            forge=delivery.forge,
            delivery_id=delivery.delivery_id,
            event_type=delivery.event_type,
            signature=delivery.signature.value,
            source=arrival.source,
            received_ms=arrival.received_ms,
            event=outcome,
        )
        await self._spool_delivery(spooled)
        metrics.webhook_delivery(delivery.forge, delivery.event_type, "spooled")
        return IntakeResult("spooled", delivery.delivery_id, repo=delivery.repo)

    async def _spool_delivery(self, spooled: SpooledDelivery) -> None:
        if self._spool is None:
            raise ServiceUnavailableError("Redis is unavailable and the webhook spool is off")
        try:
            written = await asyncio.to_thread(self._spool.write, spooled)
        except OSError as exc:
            _log.error("webhook spool write failed", error=str(exc))
            written = False
        if not written:
            raise ServiceUnavailableError("Redis is unavailable and the webhook spool is full")

    async def store(
        self, forge: str, delivery_id: str, event: WebhookEvent, limit: RateLimit | None = None
    ) -> IntakeResult:
        """Create the job of ``event`` exactly once, cancelling what it supersedes.

        Args:
            forge: the forge the delivery came from.
            delivery_id: its delivery id.
            event: what it builds.
            limit: the rate limits to count it against (none for a spooled delivery's replay).

        Raises:
            RateLimitedError: ``limit`` refused it; nothing was written.
            ServiceUnavailableError: Redis did not store the job within
                ``webhooks.store_deadline``.
        """
        job = self.jobs.new_job(**job_fields(event, forge, delivery_id))
        try:
            async with asyncio.timeout(self.settings.store_deadline.total_seconds()):
                created = await self.jobs.create(
                    job, **self._step(forge, delivery_id, event, limit)
                )
        except TimeoutError:
            # the write may still land; a replay of the delivery then finds its delivery key
            raise ServiceUnavailableError("Redis did not store the job in time") from None
        if created.duplicate is not None:
            return IntakeResult(
                "duplicate", delivery_id, created.job, created.duplicate, repo=event.repo
            )
        if created.superseded is not None:
            try:
                await self.auto_cancel.cancel(created.superseded, JobId(str(job["id"])))
            except ServiceUnavailableError as exc:
                # the job is stored: answer for it; the older job merely builds in vain
                _log.warning("superseded job not cancelled", reason=exc.message)
        return IntakeResult("created", delivery_id, created.job, repo=event.repo)

    async def preview(
        self, forge: str, delivery_id: str, event: WebhookEvent
    ) -> tuple[Job, CreateOutcome]:
        """What `store` would do with ``event`` now: a dry run of the same step, writing nothing.

        Only the repository's rate limit is checked (without counting): the source address a
        forge's delivery would come from is not known here.

        Returns:
            the job a real delivery would make, and the step's outcome.

        Raises:
            RateLimitedError: the repository is at its limit; a delivery would be refused.
        """
        job = self.jobs.new_job(**job_fields(event, forge, delivery_id))
        limit = self._limiter.limit_for(None, event.repo)
        outcome = await self.jobs.preview(job, **self._step(forge, delivery_id, event, limit))
        return job, outcome

    def _step(
        self, forge: str, delivery_id: str, event: WebhookEvent, limit: RateLimit | None
    ) -> CreateStep:
        """How a delivery's job is stored, the same for `store` and `preview`."""
        return CreateStep(
            delivery=DeliveryKey(forge, delivery_id),
            coalesce=True,
            limit=limit,
            supersede=self.auto_cancel.line_of(event),
            default_branch=event.default_branch,
        )

    def record(
        self,
        arrival: Arrival,
        event_type: str,
        signature: str,
        result: IntakeResult,
        *,
        spooled: bool = False,
    ) -> None:
        """Journal an accepted delivery (queued: see `DeliveryJournal`)."""
        job = result.job
        entry = JournalEntry(
            received_at=format_time(arrival.received_ms),
            forge=arrival.forge,
            event=event_type,
            delivery_id=result.delivery_id,
            signature=signature,
            decision=_decision(result),
            reason=_reason(result),
            detail=result.ignored.detail if result.ignored else None,
            job_id=str(job["id"]) if job else None,
            repo=result.repo,
            source=arrival.source,
            duration_ms=arrival.elapsed_ms(),
            spooled=spooled,
        )
        self.journal.record(entry)
        if entry.decision is Decision.CREATED and not spooled:
            metrics.stage("webhook_to_queued", time.perf_counter() - arrival.started)


def _decision(result: IntakeResult) -> Decision:
    if result.ignored is not None:
        return decision_of(result.ignored)
    return Decision.DUPLICATE if result.outcome == "duplicate" else Decision.CREATED


def _reason(result: IntakeResult) -> str | None:
    if result.ignored is not None:
        return result.ignored.reason.value
    return result.duplicate
