"""The counts `/metrics` reads from Redis at scrape time: one pipeline of O(1) and O(log N) reads.

They are true across replicas (every replica reads the same keys), and cost the same with a
hundred jobs stored or a hundred thousand (`bench/metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from raibid_api.domain.jobs import JobStatus
from raibid_api.storage.connection import shielded
from raibid_api.storage.keys import Keys


@dataclass(frozen=True)
class StoredCounts:
    """Jobs by status, the oldest pending job's creation time, agents, commit status backlog."""

    jobs_by_status: dict[str, int]
    oldest_pending_created_ms: int | None
    agents: int
    status_backlog: int


class GaugeReader:
    """Reads `StoredCounts` in one round trip."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    @shielded
    async def read(self) -> StoredCounts:
        """The counts as they are now."""
        statuses = [status.value for status in JobStatus]
        async with self._redis.pipeline(transaction=False) as pipe:
            for status in statuses:
                pipe.zcard(self._keys.index_status(status))
            pipe.zrange(self._keys.index_status(JobStatus.PENDING), 0, 0, withscores=True)
            pipe.hlen(self._keys.agents)
            pipe.xlen(self._keys.outbox_status)
            pipe.zcard(self._keys.outbox_status_delayed)
            *counts, oldest, agents, queued, delayed = await pipe.execute()
        return StoredCounts(
            jobs_by_status={s: int(n) for s, n in zip(statuses, counts, strict=True)},
            oldest_pending_created_ms=int(oldest[0][1]) if oldest else None,
            agents=int(agents),
            status_backlog=int(queued) + int(delayed),
        )
