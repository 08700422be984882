"""The spool's replay: deliveries spooled while Redis was away go into Redis once it answers.

Replay is in arrival order and stops at the first delivery Redis refuses, to go on at the next
pass. A file is removed only after its job is stored, so a crash in between replays it again,
and its delivery key turns that second replay into a duplicate: exactly one job either way.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from raibid_api.errors import RaibidError, ServiceUnavailableError
from raibid_api.observability import metrics
from raibid_api.webhooks.service import Arrival, WebhookIntake
from raibid_api.webhooks.spool import DeliverySpool, SpooledDelivery

REPLAY_INTERVAL_S = 1.0
_log = structlog.get_logger("raibid_api.webhooks")
_REPLAYED = metrics.SPOOL_REPLAYS.labels("replayed")
_SET_ASIDE = metrics.SPOOL_REPLAYS.labels("set_aside")


class SpoolReplayer:
    """Empties the spool into Redis through the intake's storage step."""

    def __init__(self, intake: WebhookIntake, spool: DeliverySpool) -> None:
        self._intake = intake
        self._spool = spool

    @property
    def depth(self) -> int:
        """Deliveries waiting in the spool."""
        return self._spool.depth

    async def replay_once(self) -> int:
        """Replay what is spooled, oldest first, until done or Redis stops answering.

        Returns:
            how many deliveries were replayed (and their files removed).
        """
        replayed = 0
        for path in await asyncio.to_thread(self._spool.pending):
            delivery = await asyncio.to_thread(self._spool.read, path)
            if delivery is None:
                continue
            try:
                await self._replay(delivery)
            except ServiceUnavailableError as exc:
                _log.info("spool replay paused; redis still away", reason=exc.message)
                break
            except RaibidError as exc:
                await asyncio.to_thread(self._spool.set_aside, path, exc.code)
                _SET_ASIDE.inc()
                continue
            await asyncio.to_thread(self._spool.remove, path)
            _REPLAYED.inc()
            replayed += 1
        if replayed:
            _log.info("spooled webhook deliveries replayed", count=replayed)
        return replayed

    async def _replay(self, delivery: SpooledDelivery) -> None:
        arrival = Arrival(
            delivery.forge, delivery.source, delivery.received_ms, time.perf_counter()
        )
        result = await self._intake.store(delivery.forge, delivery.delivery_id, delivery.event)
        self._intake.record(arrival, delivery.event_type, delivery.signature, result, spooled=True)

    async def run(self, interval: float) -> None:
        """Replay every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.replay_once()
            except OSError as exc:
                _log.error("spool replay failed", error=str(exc))
            await asyncio.sleep(interval)
