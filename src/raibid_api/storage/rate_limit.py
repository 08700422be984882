"""Sliding-window request logs in Redis (`rate_limit_hit.lua`), shared by every replica.

Each subject keeps the times of its requests of the last window in a sorted set, so a limit
holds over any window-long stretch, not just per calendar minute, and a refusal knows exactly
when room comes back. Refused requests are not logged: waiting out a refusal is enough.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from redis.asyncio import Redis

from raibid_api.storage.connection import ScriptBatcher
from raibid_api.storage.keys import Keys
from raibid_api.storage.scripts import Refusal, register


class RateLimitStore:
    """Counts requests per (scope, subject) over a sliding window of ``window_ms``."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._hit = register(redis, "rate_limit_hit")
        self._hits = ScriptBatcher(redis)
        self._keys = keys

    async def hit(
        self, subjects: Sequence[tuple[str, str]], *, limit: int, window_ms: int, now_ms: int
    ) -> Refusal | None:
        """Count one request against every subject, unless one of them is at ``limit``.

        Requests arriving together share one round trip (`ScriptBatcher`), which also runs
        them whatever becomes of the caller.

        Returns:
            ``None`` when it was counted, else the first of its subjects at its limit (and
            nothing of it was counted).
        """
        keys = [self._keys.rate_limit(scope, subject) for scope, subject in subjects]
        reply = await self._hits.call(self._hit, keys, [limit, now_ms, window_ms, uuid.uuid4().hex])
        if int(reply[0]) == 1:
            return None
        return Refusal(subjects[int(reply[1]) - 1][0], int(reply[2]))
