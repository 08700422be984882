"""The retention sweep: ended jobs leave the indexes when their retention is over."""

from __future__ import annotations

import asyncio

import structlog

from raibid_api.domain.jobs import Clock
from raibid_api.errors import ServiceUnavailableError
from raibid_api.storage.job_store import JobStore

_log = structlog.get_logger("raibid_api.retention")


async def run_retention(store: JobStore, clock: Clock, interval: float) -> None:
    """Prune expired jobs every ``interval`` seconds until cancelled; safe on every replica."""
    while True:
        try:
            while await store.prune_expired(clock.now_ms()):
                pass
        except ServiceUnavailableError as exc:
            _log.warning("retention sweep skipped", reason=exc.message)
        await asyncio.sleep(interval)
