"""Sliding-window request logs in Redis (`rate_limit_hit.lua`), shared by every replica.

Each subject keeps the times of its requests of the last window in a sorted set, so a limit
holds over any window-long stretch, not just per calendar minute, and a refusal knows exactly
when room comes back. Refused requests are not logged: waiting out a refusal is enough.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from raibid_api.storage.connection import shielded
from raibid_api.storage.keys import Keys
from raibid_api.storage.scripts import Refusal, register


class RateLimitStore:
    """Counts requests per (scope, subject) over a sliding window of ``window_ms``."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._hit = register(redis, "rate_limit_hit")
        self._redis = redis
        self._keys = keys

    @shielded
    async def hit_many(
        self,
        requests: Sequence[Sequence[tuple[str, str]]],
        *,
        limit: int,
        window_ms: int,
        now_ms: int,
    ) -> list[Refusal | None]:
        """Count several requests in one round trip, in order, each as `hit` would.

        Returns:
            for each request, ``None`` when it was counted, else the first of its subjects at
            its limit (and nothing of it was counted).
        """
        try:
            replies = await self._run(requests, limit, window_ms, now_ms)
        except NoScriptError:
            # a restarted Redis forgot the script; nothing ran, since it failed on the first
            await self._redis.script_load(self._hit.script)
            replies = await self._run(requests, limit, window_ms, now_ms)
        return [
            None if int(reply[0]) == 1 else Refusal(subjects[int(reply[1]) - 1][0], int(reply[2]))
            for subjects, reply in zip(requests, replies, strict=True)
        ]

    async def _run(
        self,
        requests: Sequence[Sequence[tuple[str, str]]],
        limit: int,
        window_ms: int,
        now_ms: int,
    ) -> list[Any]:
        # EVALSHA straight into the pipeline: a script object queued there would cost an extra
        # SCRIPT EXISTS round trip on every execute
        async with self._redis.pipeline(transaction=False) as pipe:
            for subjects in requests:
                keys = [self._keys.rate_limit(scope, subject) for scope, subject in subjects]
                member = uuid.uuid4().hex
                pipe.evalsha(self._hit.sha, len(keys), *keys, limit, now_ms, window_ms, member)
            replies: list[Any] = await pipe.execute()
        return replies
