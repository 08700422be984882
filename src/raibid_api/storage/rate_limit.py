"""Sliding-window request logs in Redis (`rate_limit_hit.lua`), shared by every replica.

Each subject keeps the times of its requests of the last window in a sorted set, so a limit
holds over any window-long stretch, not just per calendar minute, and a refusal knows exactly
when room comes back. Refused requests are not logged: waiting out a refusal is enough.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from raibid_api.domain.limits import RATE_WINDOW_MS, RateLimit
from raibid_api.storage.connection import ScriptBatcher
from raibid_api.storage.keys import Keys
from raibid_api.storage.scripts import register


class RateLimitStore:
    """Counts requests per (scope, subject) over a sliding window of a minute."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._hit = register(redis, "rate_limit_hit")
        self._hits = ScriptBatcher(redis)
        self._keys = keys

    async def hit(self, limit: RateLimit, now_ms: int) -> None:
        """Count one request against every subject of ``limit``, unless one of them is full.

        Requests arriving together share one round trip (`ScriptBatcher`), which also runs
        them whatever becomes of the caller.

        Raises:
            RateLimitedError: a subject is at its limit; nothing of the request was counted.
        """
        keys = [self._keys.rate_limit(scope, subject) for scope, subject in limit.subjects]
        args = [limit.per_minute, now_ms, RATE_WINDOW_MS, uuid.uuid4().hex]
        reply = await self._hits.call(self._hit, keys, args)
        if int(reply[0]) != 1:
            raise limit.refused(int(reply[1]), int(reply[2]))
