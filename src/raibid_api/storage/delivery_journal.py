"""The webhook delivery journal in Redis.

The journal is one stream, ``P:webhook:deliveries``: an entry per delivery, trimmed on every
append to ``jobs.retention`` (``XADD MINID``) and capped at `MAX_ENTRIES` so that a flood cannot
grow it without bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from raibid_api.storage.connection import shielded
from raibid_api.storage.keys import Keys

MAX_ENTRIES = 200_000

JournalRow = tuple[str, dict[str, str]]
"""One journal entry: its stream id and its fields."""


class DeliveryJournalStore:
    """Appends to and pages through the delivery journal."""

    def __init__(
        self, redis: Redis, keys: Keys, *, retention_s: int, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._retention_ms = retention_s * 1000
        self._max_entries = max_entries

    @shielded
    async def append_many(self, entries: Sequence[Mapping[str, str]], now_ms: int) -> None:
        """Add entries in one round trip; those older than the retention (or past the cap) go."""
        stream = self._keys.webhook_deliveries
        oldest = max(0, now_ms - self._retention_ms)
        async with self._redis.pipeline(transaction=False) as pipe:
            for fields in entries:
                entry: dict[Any, Any] = dict(fields)
                pipe.xadd(stream, entry, minid=oldest)
            pipe.xtrim(stream, maxlen=self._max_entries, approximate=True)
            await pipe.execute()

    @shielded
    async def read_before(self, before: str | None, count: int) -> list[JournalRow]:
        """Up to ``count`` entries, newest first, older than the entry ``before`` (if given).

        ``before`` must be a well-formed stream id other than ``0-0`` (the caller validates it).
        """
        newest = f"({before}" if before is not None else "+"
        rows: list[tuple[Any, Any]] = (
            await self._redis.xrevrange(
                self._keys.webhook_deliveries, max=newest, min="-", count=count
            )
            or []
        )
        return [(str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()})
                for entry_id, fields in rows]  # fmt: skip
