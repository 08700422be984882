"""A job's event stream (``P:job:<id>:events``): log lines and status changes, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from redis.asyncio import Redis

from raibid_api.storage.connection import shielded
from raibid_api.storage.keys import Keys

Entry = tuple[str, dict[str, str]]
_PAGE = 1000


class EventStore:
    """Reads of job event streams."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    @shielded
    async def read_after(self, job_id: str, after: str | None, count: int) -> list[Entry]:
        """Up to ``count`` entries after the entry id ``after`` (from the start when None)."""
        start = f"({after}" if after else "-"
        reply = await self._redis.xrange(self._keys.events(job_id), start, "+", count=count)
        return cast("list[Entry]", reply)

    @shielded
    async def read_last(self, job_id: str, count: int) -> list[Entry]:
        """The last ``count`` entries, oldest first."""
        reply = await self._redis.xrevrange(self._keys.events(job_id), "+", "-", count=count)
        return list(reversed(cast("list[Entry]", reply)))

    async def read_all(self, job_id: str) -> AsyncIterator[Entry]:
        """Every entry, oldest first, read a page at a time."""
        after = None
        while True:
            page = await self.read_after(job_id, after, _PAGE)
            for entry in page:
                yield entry
            if len(page) < _PAGE:
                return
            after = page[-1][0]
