"""The intake's rate limits: per source address and per repository, over any sliding minute.

Both limits are ``webhooks.rate_limit_per_minute``. The source is counted for every delivery,
the repository only once the delivery is authenticated, so that nobody can spend a repository's
budget with unsigned requests naming it. A delivery that makes a job is counted in the same
Redis step that stores the job (`for_job`); every other one through `DeliveryLimiter.admit`.
When Redis does not answer, the limits are not enforced: a delivery is never refused for want
of a counter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Protocol

import structlog

from raibid_api.errors import RateLimitedError, ServiceUnavailableError
from raibid_api.jobs.models import Clock
from raibid_api.storage.job_store import RATE_WINDOW_MS, RateLimit

WHAT = "webhook deliveries"
# The counters must not hold a delivery up for long when Redis is slow; past this, let it in.
_DEADLINE_S = 0.5
_log = structlog.get_logger("raibid_api.webhooks")


class LimitRefusal(Protocol):
    """A request over its limit (`raibid_api.storage.rate_limit.Refusal`)."""

    @property
    def scope(self) -> str:
        """``source`` or ``repo``."""
        ...

    @property
    def retry_after_ms(self) -> int:
        """When the window ends."""
        ...


class CounterStore(Protocol):
    """Where the counters live (`raibid_api.storage.rate_limit.RateLimitStore`)."""

    def hit(
        self, subjects: Sequence[tuple[str, str]], *, limit: int, window_ms: int, now_ms: int
    ) -> Awaitable[LimitRefusal | None]:
        """Count one request for every subject, unless one of them is at ``limit``."""
        ...


def _subjects(source: str, repo: str | None) -> list[tuple[str, str]]:
    return [("source", source)] + ([("repo", repo)] if repo is not None else [])


class DeliveryLimiter:
    """Admits deliveries while their source and repository are under the limit.

    Deliveries arriving together share one Redis round trip (the store batches them).
    """

    def __init__(self, store: CounterStore, per_minute: int, clock: Clock) -> None:
        self._store = store
        self._per_minute = per_minute
        self._clock = clock

    def for_job(self, source: str, repo: str) -> RateLimit:
        """The limits the job-creating step counts an authenticated delivery against."""
        return RateLimit(WHAT, _subjects(source, repo), self._per_minute)

    async def admit(self, source: str, repo: str | None) -> None:
        """Count a delivery from ``source`` (and for ``repo``, when known).

        Raises:
            RateLimitedError: the source or the repository is at its limit for this minute.
        """
        try:
            async with asyncio.timeout(_DEADLINE_S):
                refusal = await self._store.hit(
                    _subjects(source, repo), limit=self._per_minute, window_ms=RATE_WINDOW_MS,
                    now_ms=self._clock.now_ms(),
                )  # fmt: skip
        except (ServiceUnavailableError, TimeoutError) as exc:
            _log.warning("webhook rate limit not checked", reason=type(exc).__name__)
            return
        if refusal is not None:
            raise RateLimitedError.per_minute(
                WHAT, refusal.scope, self._per_minute, refusal.retry_after_ms
            )
