"""What agents do to the jobs they hold: claim from the queue, heartbeat, append logs, complete.

Every call that takes a job token checks it inside the same Lua script that acts, so a token of a
requeued attempt can never act on the attempt that replaced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import orjson
import structlog
from redis.asyncio import Redis

from raibid_api.errors import ConflictError, JobNotFoundError, JobTokenError
from raibid_api.storage.connection import call_deadline, create_group, regrouped, shielded
from raibid_api.storage.keys import GROUP, Keys
from raibid_api.storage.scripts import register

_log = structlog.get_logger("raibid_api.storage")


class LeaseExpiredError(JobTokenError):
    """The job ended and the lease that let its agent finish reporting is over."""

    code = "lease_expired"


class AlreadyCompletedError(ConflictError):
    """The job was completed with this token before."""

    code = "already_completed"

    def __init__(self, message: str, outcome: str | None = None) -> None:
        super().__init__(message, outcome=outcome)
        self.outcome = outcome


class LogGapError(ConflictError):
    """A log batch starts after lines the server has not received."""

    code = "log_offset_gap"

    def __init__(self, expected_offset: int) -> None:
        super().__init__(
            f"log batch leaves a gap; send from offset {expected_offset}",
            expected_offset=expected_offset,
        )
        self.expected_offset = expected_offset


@dataclass(frozen=True)
class Heartbeat:
    """What a heartbeat told the agent."""

    cancel: bool
    lease_until_ms: int


@dataclass(frozen=True)
class Lease:
    """One running attempt as a sweep saw it."""

    job_id: str
    until_ms: int
    started_ms: int | None
    token_hash: str


@dataclass(frozen=True)
class QueueStats:
    """How the queue looks right now."""

    pending: int
    running: int
    oldest_pending_ms: int | None


def _refuse(code: int, job_id: str, reply: Sequence[object]) -> None:
    if code == -1:
        raise JobNotFoundError(job_id)
    if code == -2:
        raise JobTokenError("this job token is not valid for the job's current attempt")
    if code == -3:
        outcome = str(reply[1]) if len(reply) > 1 else None
        raise AlreadyCompletedError(f"job {job_id} was already completed", outcome)
    if code == -4:
        raise LeaseExpiredError(f"the lease on job {job_id} is over")
    if code == -5:
        raise LogGapError(int(str(reply[1])))


class AgentStore:
    """The agent protocol's reads and atomic writes."""

    def __init__(self, redis: Redis, keys: Keys, *, events_maxlen: int) -> None:
        self._redis = redis
        self._keys = keys
        self._events_maxlen = events_maxlen
        # the token checks every agent script shares come with each (`scripts.LIBRARIES`)
        self._heartbeat = register(redis, "agent_heartbeat")
        self._append = register(redis, "agent_append_logs")
        self._mark = register(redis, "agent_mark_completed")
        self._commit = register(redis, "agent_record_commit")
        self._return = register(redis, "queue_return_entry")

    async def _repair_group(self) -> None:
        if await create_group(self._redis, self._keys.queue, GROUP):
            _log.warning("redis had lost the agents' queue group; created it again")

    @shielded
    async def next_entry(self, agent_id: str, block_ms: int) -> tuple[str, str] | None:
        """Wait up to ``block_ms`` (0: not at all) for a queue entry: (entry id, job id).

        A queue group Redis lost (it restarted empty, was flushed, or a new master came up
        without the data) is created again on the spot. The wait is cut to half the call
        deadline, so that a slow answer is still told from a stalled Redis; the caller asks
        again.
        """
        block_ms = min(block_ms, int(call_deadline() * 500))
        reply = await regrouped(
            lambda: self._redis.xreadgroup(
                GROUP, agent_id, {self._keys.queue: ">"}, count=1, block=block_ms or None
            ),
            self._repair_group,
        )
        if not reply:
            return None
        # RESP2 shape: [[stream, [(entry id, {field: value})]]]
        streams = cast("list[tuple[str, list[tuple[str, dict[str, str]]]]]", reply)
        entry_id, fields = streams[0][1][0]
        return entry_id, fields["job_id"]

    @shielded
    async def drop_entry(self, entry_id: str) -> None:
        """Ack and delete a queue entry whose job is no longer waiting."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._keys.queue, GROUP, entry_id)
            pipe.xdel(self._keys.queue, entry_id)
            await pipe.execute()  # XACK answers 0 when the group is gone

    @shielded
    async def lease_fields(self, job_id: str) -> dict[str, str]:
        """A job's status, agent and lease data (token digest, lease end, completion, first log)."""
        names = ["status", "agent_id", "_token", "_lease_until", "_completed", "_log_count",
                 "_first_log_ms"]  # fmt: skip
        values = await self._redis.hmget(self._keys.job(job_id), names)
        return {n: str(v) for n, v in zip(names, values, strict=True) if v is not None}

    @shielded
    async def heartbeat(
        self, job_id: str, token_hash: str, now_ms: int, lease_ms: int
    ) -> Heartbeat:
        """Extend the lease of a running job, or say that the job ended under the agent."""
        reply = await self._heartbeat(
            keys=[self._keys.job(job_id)], args=[token_hash, now_ms, lease_ms]
        )
        _refuse(int(reply[0]), job_id, reply)
        return Heartbeat(cancel=bool(int(reply[1])), lease_until_ms=int(reply[2]))

    @shielded
    async def append_logs(
        self, job_id: str, token_hash: str, now_ms: int, timestamp: str, offset: int | None,
        lines: Sequence[tuple[str, str]], batch_id: str | None = None,
    ) -> tuple[int, int | None]:  # fmt: skip
        """Append ``lines`` (stream, text) after the ones the job has.

        Returns:
            the attempt's line count after the batch, and when the attempt was claimed (ms) if
            the batch holds its first lines (else None).

        Without ``offset``, a ``batch_id`` equal to the attempt's last one appends nothing.

        Raises:
            LogGapError: ``offset`` is past the lines the server has.
        """
        args: list[str | int] = [token_hash, now_ms, -1 if offset is None else offset,
                                 self._events_maxlen, timestamp, batch_id or ""]  # fmt: skip
        for stream, line in lines:
            args += [stream, line]
        reply = await self._append(
            keys=[self._keys.job(job_id), self._keys.events(job_id)], args=args
        )
        _refuse(int(reply[0]), job_id, reply)
        started_ms = int(reply[2])
        return int(reply[1]), started_ms if started_ms >= 0 else None

    @shielded
    async def record_commit(self, job_id: str, token_hash: str, commit: str) -> str | None:
        """Record the commit a running job's agent checked out, once; the job's commit after.

        Returns:
            The job's commit: ``commit``, or the one it already had (None when it has none and
            no longer runs).
        """
        reply = await self._commit(keys=[self._keys.job(job_id)], args=[token_hash, commit])
        code = int(reply[0])
        if code < 0:
            _refuse(code, job_id, reply)
        return str(reply[1]) or None

    @shielded
    async def mark_completed(self, job_id: str, token_hash: str, now_ms: int, outcome: str) -> bool:
        """Record a completion for a job that already ended; False when it is still running."""
        reply = await self._mark(keys=[self._keys.job(job_id)], args=[token_hash, now_ms, outcome])
        code = int(reply[0])
        if code == 0:
            return False
        _refuse(code, job_id, reply)
        return True

    @shielded
    async def running_leases(self) -> list[Lease]:
        """The lease of every running job's current attempt."""
        ids = [str(i) for i in await self._redis.zrange(self._keys.index_status("running"), 0, -1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(self._keys.job(job_id), ["_lease_until", "_started_ms", "_token"])
            rows = await pipe.execute()
        return [
            Lease(job_id, int(lease or 0), int(started) if started else None, str(token))
            for job_id, (lease, started, token) in zip(ids, rows, strict=True)
            if token
        ]

    @shielded
    async def record_agent(self, agent_id: str, info: dict[str, object]) -> None:
        """Remember what an agent last said and when, over what it said before."""
        before = await self._redis.hget(self._keys.agents, agent_id)
        merged = (orjson.loads(before) if before else {}) | info
        await self._redis.hset(self._keys.agents, agent_id, orjson.dumps(merged).decode())

    @shielded
    async def claim_key(self, candidate: str) -> str:
        """The cluster's claim-token key: ``candidate`` unless a replica stored one before."""
        await self._redis.set(self._keys.claim_key, candidate, nx=True)
        stored = await self._redis.get(self._keys.claim_key)
        return str(stored or candidate)

    @shielded
    async def reserve_pod(self, pod_uid: str, ttl_ms: int) -> bool:
        """Mark pod ``pod_uid`` as claiming; False when it claims or claimed already."""
        return bool(await self._redis.set(self._keys.pod_claim(pod_uid), "claiming",
                                          nx=True, px=ttl_ms))  # fmt: skip

    @shielded
    async def settle_pod(self, pod_uid: str, job_id: str, ttl_ms: int) -> None:
        """Record the one job pod ``pod_uid`` claimed, for ``ttl_ms``."""
        await self._redis.set(self._keys.pod_claim(pod_uid), job_id, px=ttl_ms)

    @shielded
    async def release_pod(self, pod_uid: str) -> None:
        """Forget a reservation that claimed nothing: the pod may claim again."""
        await self._redis.delete(self._keys.pod_claim(pod_uid))

    @shielded
    async def return_entry(self, entry_id: str, job_id: str) -> None:
        """Put a delivered entry back for another agent: same job, same attempt, fresh entry."""
        await self._return(
            keys=[self._keys.job(job_id), self._keys.queue], args=[entry_id, GROUP, job_id]
        )

    @shielded
    async def agents(self) -> list[dict[str, object]]:
        """Every agent seen, with what it last said."""
        raw = await self._redis.hgetall(self._keys.agents)
        return [dict(orjson.loads(value)) for value in raw.values()]

    @shielded
    async def forget_agents(self, agent_ids: Sequence[str]) -> None:
        """Drop agents not seen for long."""
        if agent_ids:
            await self._redis.hdel(self._keys.agents, *agent_ids)

    @shielded
    async def queue_stats(self) -> QueueStats:
        """Jobs waiting, jobs held, and when the oldest waiting one was created."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self._keys.index_status("pending"))
            pipe.zcard(self._keys.index_status("running"))
            pipe.zrange(self._keys.index_status("pending"), 0, 0, withscores=True)
            pending, running, oldest = await pipe.execute()
        return QueueStats(int(pending), int(running), int(oldest[0][1]) if oldest else None)
