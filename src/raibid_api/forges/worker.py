"""The outbox worker: reads due status reports, posts them to their forge, settles each one.

Every replica runs one. The consumer group hands each report to one replica; a replica that dies
holding reports loses them to the others after ``claim_idle_ms``. A report the forge could not
take now is queued again with a longer wait; one it refused for good is dropped (a final state
then waits for the sweep).
"""

from __future__ import annotations

import asyncio

import structlog

from raibid_api.domain.jobs import Clock
from raibid_api.errors import ServiceUnavailableError
from raibid_api.forges.clients import CommitStatus, Delivery
from raibid_api.forges.policy import ReportingPolicy
from raibid_api.forges.routing import ForgeRouter
from raibid_api.forges.states import CommitState
from raibid_api.observability import metrics
from raibid_api.storage.outbox import (
    OutboxEntry,
    Outcome,
    SendPermit,
    StatusOutbox,
    StatusReport,
)

_log = structlog.get_logger("raibid_api.forges")


_STATES: dict[str, CommitState] = {
    "pending": "pending", "success": "success", "failure": "failure", "error": "error",
}  # fmt: skip


def commit_status(report: StatusReport) -> CommitStatus:
    """The commit status a report posts (a state no forge takes becomes ``error``)."""
    state = _STATES.get(report.state, "error")
    return CommitStatus(report.repo, report.commit, state, report.description,
                        report.target_url, report.context)  # fmt: skip


def _fields(report: StatusReport) -> dict[str, object]:
    return {
        "job_id": report.job_id, "forge": report.forge, "repo": report.repo,
        "commit": report.commit[:12], "state": report.state, "attempt": report.attempt,
    }  # fmt: skip


class StatusWorker:
    """Posts the outbox's reports, as one consumer of its group."""

    def __init__(
        self, outbox: StatusOutbox, router: ForgeRouter, clock: Clock, policy: ReportingPolicy
    ) -> None:
        self._outbox = outbox
        self._router = router
        self._clock = clock
        self._policy = policy

    async def run_once(self, block_ms: int | None = None) -> int:
        """Promote due retries, then send one batch of reports; return how many were handled.

        Args:
            block_ms: how long to wait for new reports when none is there (None: do not wait).
        """
        policy = self._policy
        await self._outbox.promote_due(self._clock.now_ms(), policy.batch * 4)
        entries = await self._outbox.claim_stale(policy.claim_idle_ms, policy.batch)
        if not entries:
            entries = await self._outbox.read_new(policy.batch, block_ms)
        results = await asyncio.gather(*(self._deliver(e) for e in entries), return_exceptions=True)
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, Exception):
                # the entry stays pending: it is claimed again after claim_idle_ms
                _log.error("status report failed unexpectedly", entry_id=entry.entry_id,
                           error=type(result).__name__, **_fields(entry.report))  # fmt: skip
        return len(entries)

    async def run(self) -> None:
        """Send reports until cancelled; Redis outages are waited out."""
        ready = False
        while True:
            try:
                if not ready:
                    await self._outbox.ensure_group()
                    ready = True
                await self.run_once(block_ms=self._policy.poll_ms)
            except ServiceUnavailableError as exc:
                _log.warning("status worker waiting for redis", reason=exc.message)
                await asyncio.sleep(self._policy.poll_ms / 1000)
            except Exception:
                _log.exception("status worker tick failed")
                ready = False
                await asyncio.sleep(self._policy.poll_ms / 1000)

    async def _deliver(self, entry: OutboxEntry) -> None:
        report = entry.report
        now = self._clock.now_ms()
        permit = await self._outbox.begin_send(entry, now, self._policy.lease_ms)
        if permit is SendPermit.STALE:
            await self._settle_as(entry, "dropped")
            return
        if permit is SendPermit.BUSY:
            later = report.next_attempt(now + self._policy.busy_delay_ms, attempt=report.attempt)
            await self._settle_as(entry, "retry", retry=later, counted_as="busy")
            return
        reporter = self._router.reporter(report.forge)
        if reporter is None:
            _log.warning("status not reported: forge not configured", **_fields(report))
            await self._give_up(entry)
            return
        await self._settle(entry, await reporter.report(commit_status(report)))

    async def _settle(self, entry: OutboxEntry, delivery: Delivery) -> None:
        report = entry.report
        if delivery.outcome == "sent":
            _log.info("status reported", http_status=delivery.http_status, **_fields(report))
            await self._settle_as(entry, "sent")
            return
        if delivery.outcome == "rejected" or report.attempt >= self._policy.max_attempts:
            _log.warning("status report given up", http_status=delivery.http_status,
                         detail=delivery.detail, **_fields(report))  # fmt: skip
            await self._give_up(entry)
            return
        wait = self._policy.backoff_ms(report.attempt, delivery.retry_after_s)
        _log.info("status report will be retried", http_status=delivery.http_status,
                  detail=delivery.detail, retry_in_ms=wait, **_fields(report))  # fmt: skip
        retry = report.next_attempt(self._clock.now_ms() + wait)
        await self._settle_as(entry, "retry", retry=retry)

    async def _settle_as(
        self, entry: OutboxEntry, outcome: Outcome, *, at_ms: int = 0,
        retry: StatusReport | None = None, counted_as: str | None = None,
    ) -> None:  # fmt: skip
        metrics.status_report(entry.report.forge, counted_as or outcome)
        await self._outbox.settle(entry, outcome, at_ms=at_ms, retry=retry)

    async def _give_up(self, entry: OutboxEntry) -> None:
        look_again = self._clock.now_ms() + self._policy.gave_up_look_again_ms
        await self._settle_as(entry, "gave_up", at_ms=look_again)
