"""The intake's rate limits: per source address and per repository, over any sliding minute.

Both limits are ``webhooks.rate_limit_per_minute``. The source is counted for every delivery,
the repository only once the delivery is authenticated, so that nobody can spend a repository's
budget with unsigned requests naming it. A delivery that makes a job is counted in the same
Redis step that stores the job; every other one through `DeliveryLimiter.admit`.
When Redis does not answer, the limits are not enforced: a delivery is never refused for want
of a counter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

import structlog

from raibid_api.domain.jobs import Clock
from raibid_api.domain.limits import RateLimit
from raibid_api.errors import ServiceUnavailableError

WHAT = "webhook deliveries"
_log = structlog.get_logger("raibid_api.webhooks")


class CounterStore(Protocol):
    """Where the counters live (`raibid_api.storage.rate_limit.RateLimitStore`)."""

    def hit(self, limit: RateLimit, now_ms: int) -> Awaitable[None]:
        """Count one request for every subject of ``limit``, or raise `RateLimitedError`."""
        ...


class DeliveryLimiter:
    """Admits deliveries while their source and repository are under the limit.

    Deliveries arriving together share one Redis round trip (the store batches them). A count
    may hold a delivery up for ``deadline_s`` at most (``webhooks.rate_limit_deadline``): past
    it, with Redis slow, the delivery is let in.
    """

    def __init__(
        self, store: CounterStore, per_minute: int, clock: Clock, *, deadline_s: float
    ) -> None:
        self._store = store
        self._per_minute = per_minute
        self._clock = clock
        self._deadline_s = deadline_s

    def limit_for(self, source: str | None, repo: str | None) -> RateLimit:
        """The limits a delivery from ``source`` (for ``repo``, once authenticated) counts in.

        Without a ``source`` (``explain``, which a forge does not send): the repository's alone.
        """
        subjects = [("source", source)] if source is not None else []
        if repo is not None:
            subjects.append(("repo", repo))
        return RateLimit(WHAT, subjects, self._per_minute)

    async def admit(self, source: str, repo: str | None) -> None:
        """Count a delivery from ``source`` (and for ``repo``, when known).

        Raises:
            RateLimitedError: the source or the repository is at its limit for this minute.
        """
        try:
            async with asyncio.timeout(self._deadline_s):
                await self._store.hit(self.limit_for(source, repo), self._clock.now_ms())
        except (ServiceUnavailableError, TimeoutError) as exc:
            _log.warning("webhook rate limit not checked", reason=type(exc).__name__)
