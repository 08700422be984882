"""The commit status outbox in Redis: reports queued for the forges, retried, and never lost.

Reports due now are entries of the stream ``P:outbox:status``, shared by every replica through the
consumer group ``raibid-status``. A report waiting for a retry sits in ``P:outbox:status:delayed``
(scored by its ``not_before``) until it is due, so every stream entry can be sent the moment it
is read and a forge that is down never blocks the reports of another. Each job has a record of
the newest rank queued and the newest rank the forge took, which keeps an older state from ever
overwriting a newer one; ``P:outbox:status:unreported`` holds the ended jobs whose final state no
forge has acknowledged yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Literal

import orjson
import structlog
from redis.exceptions import ResponseError

from raibid_api.storage.connection import (
    RedisClient,
    call_deadline,
    create_group,
    regrouped,
    shielded,
)
from raibid_api.storage.keys import Keys
from raibid_api.storage.scripts import register

STATUS_GROUP = "raibid-status"  # the status workers' consumer group on the outbox stream
_log = structlog.get_logger("raibid_api.outbox")

EnqueueMode = Literal["change", "final", "resend"]
Outcome = Literal["sent", "dropped", "retry", "gave_up"]


@dataclass(frozen=True)
class StatusReport:
    """One commit status to post: where, what, and its place in the job's history.

    ``rank`` orders the reports of one job (a later status of the job has a higher rank);
    ``final`` marks the job's terminal state.
    """

    job_id: str
    forge: str
    repo: str
    commit: str
    state: str
    description: str
    target_url: str
    context: str
    rank: int
    final: bool
    attempt: int = 1
    not_before: int = 0

    def to_fields(self) -> dict[str, str]:
        """The stream entry fields of this report."""
        fields = {key: str(value) for key, value in asdict(self).items()}
        fields["final"] = "1" if self.final else "0"
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> StatusReport:
        """The report of a stream entry; raises KeyError or ValueError on a malformed one."""
        text = {name: str(fields[name]) for name in ("job_id", "forge", "repo", "commit",
                "state", "description", "target_url", "context")}  # fmt: skip
        return cls(
            **text,
            rank=int(fields["rank"]),
            final=fields["final"] == "1",
            attempt=int(fields["attempt"]),
            not_before=int(fields["not_before"]),
        )

    def next_attempt(self, not_before: int, attempt: int | None = None) -> StatusReport:
        """The same report, to be tried again at ``not_before`` as ``attempt`` (default: +1)."""
        return replace(self, attempt=self.attempt + 1 if attempt is None else attempt,
                       not_before=not_before)  # fmt: skip


@dataclass(frozen=True)
class OutboxEntry:
    """A report read from the stream, with the entry id that settles it."""

    entry_id: str
    report: StatusReport


class SendPermit(StrEnum):
    """Whether a consumer may send a report now."""

    GO = "go"
    STALE = "stale"  # a newer state of the job is queued or was reported: drop this one
    BUSY = "busy"  # another consumer is sending a report of the same job: try a little later


@dataclass(frozen=True)
class OutboxDepth:
    """How much is waiting: due now, waiting for a retry, ended jobs not acknowledged."""

    queued: int
    delayed: int
    unreported: int


class StatusOutbox:
    """Reads and atomic writes of the commit status outbox, as one consumer of its group."""

    def __init__(self, redis: RedisClient, keys: Keys, *, consumer: str, record_ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._group = STATUS_GROUP
        self.consumer = consumer
        self._record_ttl_s = record_ttl_s
        self._enqueue = register(redis, "outbox_enqueue")
        self._begin = register(redis, "outbox_begin")
        self._settle = register(redis, "outbox_settle")
        self._promote = register(redis, "outbox_promote")
        self._claim_unreported = register(redis, "outbox_claim_unreported")

    @shielded
    async def ensure_group(self) -> None:
        """Create the consumer group at id 0 (so no report queued before it is skipped)."""
        await create_group(self._redis, self._keys.outbox_status, self._group)

    async def _repair_group(self) -> None:
        if await create_group(self._redis, self._keys.outbox_status, self._group):
            _log.warning("redis had lost the status outbox's group; created it again")

    @shielded
    async def enqueue(
        self, report: StatusReport, *, look_again_ms: int, mode: EnqueueMode = "change"
    ) -> bool:
        """Queue ``report``; False when a report as new or newer is queued or reported already.

        Args:
            report: the report.
            look_again_ms: for a final state, when the sweep looks at it again unless the forge
                acknowledged it by then.
            mode: ``change`` for a status change; ``final`` when the sweep reports an ended job
                nobody queued; ``resend`` when the sweep queues an unacknowledged final state again.
        """
        keys = [self._keys.outbox_status, self._keys.status_record(report.job_id),
                self._keys.outbox_status_unreported]  # fmt: skip
        args: list[Any] = [mode, report.rank, "1" if report.final else "0", report.job_id,
                           look_again_ms, self._record_ttl_s]  # fmt: skip
        for name, value in report.to_fields().items():
            args += [name, value]
        return await self._enqueue(keys=keys, args=args) is not None

    @shielded
    async def note_final(self, job_id: str, rank: int) -> None:
        """Record that a job ended with nothing to report, so that the sweep leaves it alone."""
        record = self._keys.status_record(job_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(record, "final", rank)
            pipe.expire(record, self._record_ttl_s)
            await pipe.execute()

    @shielded
    async def promote_due(self, now_ms: int, limit: int = 100) -> int:
        """Move reports whose retry time has come into the stream; return how many."""
        keys = [self._keys.outbox_status_delayed, self._keys.outbox_status]
        return int(await self._promote(keys=keys, args=[now_ms, limit]))

    @shielded
    async def read_new(self, count: int, block_ms: int | None = None) -> list[OutboxEntry]:
        """Up to ``count`` reports no consumer has read yet, now this consumer's to settle.

        ``block_ms`` is cut to half the call deadline (see `AgentStore.next_entry`).
        """
        if block_ms is not None:
            block_ms = min(block_ms, int(call_deadline() * 500))
        reply: Any = await regrouped(
            lambda: self._redis.xreadgroup(
                self._group, self.consumer, {self._keys.outbox_status: ">"}, count=count,
                block=block_ms,
            ),
            self._repair_group,
        )  # fmt: skip
        rows = [row for _, stream_rows in reply or [] for row in stream_rows]
        return await self._decoded(rows)

    @shielded
    async def claim_stale(self, min_idle_ms: int, count: int) -> list[OutboxEntry]:
        """Take over up to ``count`` reports that other consumers read and left for ``min_idle_ms``.

        A consumer settles what it reads within seconds; one idle for longer has died.
        """
        reply: Any = await regrouped(
            lambda: self._redis.xautoclaim(
                self._keys.outbox_status, self._group, self.consumer, min_idle_ms, "0-0",
                count=count,
            ),
            self._repair_group,
        )  # fmt: skip
        return await self._decoded(reply[1])

    async def _decoded(
        self, rows: Iterable[tuple[str, Mapping[str, str] | None]]
    ) -> list[OutboxEntry]:
        entries = []
        for entry_id, fields in rows:
            try:
                entries.append(OutboxEntry(entry_id, StatusReport.from_fields(fields or {})))
            except (KeyError, ValueError):
                _log.warning("dropped a malformed outbox entry", entry_id=entry_id)
                await self._redis.xack(self._keys.outbox_status, self._group, entry_id)
                await self._redis.xdel(self._keys.outbox_status, entry_id)
        return entries

    @shielded
    async def begin_send(self, entry: OutboxEntry, now_ms: int, lease_ms: int) -> SendPermit:
        """Take the job's send lease for ``entry`` unless it is stale or another sender holds it."""
        code = await self._begin(
            keys=[self._keys.status_record(entry.report.job_id)],
            args=[entry.report.rank, self.consumer, now_ms, lease_ms],
        )
        return {1: SendPermit.GO, 0: SendPermit.STALE, 2: SendPermit.BUSY}[int(code)]

    @shielded
    async def settle(
        self, entry: OutboxEntry, outcome: Outcome, *, at_ms: int = 0,
        retry: StatusReport | None = None,
    ) -> bool:  # fmt: skip
        """Ack and delete ``entry`` and record its outcome, in one step.

        Args:
            entry: the entry.
            outcome: ``sent`` (the forge took it), ``dropped`` (stale), ``retry`` (``retry`` is
                queued for ``retry.not_before``) or ``gave_up`` (a final state is looked at again
                by the sweep at ``at_ms``).
            at_ms: for ``gave_up``, when the sweep looks again.
            retry: for ``retry``, the next attempt.

        Returns:
            False when another consumer had settled the entry already (nothing changed).
        """
        report = entry.report
        member = orjson.dumps(retry.to_fields(), option=orjson.OPT_SORT_KEYS) if retry else b""
        keys = [self._keys.outbox_status, self._keys.status_record(report.job_id),
                self._keys.outbox_status_unreported, self._keys.outbox_status_delayed]  # fmt: skip
        args: list[Any] = [
            self._group, entry.entry_id, self.consumer, outcome, report.rank,
            "1" if report.final else "0", report.job_id,
            retry.not_before if retry else at_ms, member,
        ]  # fmt: skip
        return int(await self._settle(keys=keys, args=args)) == 1

    @shielded
    async def claim_unreported(self, now_ms: int, next_look_ms: int, limit: int) -> list[str]:
        """Ended jobs due for another look at their final state, taken until ``next_look_ms``."""
        reply = await self._claim_unreported(
            keys=[self._keys.outbox_status_unreported], args=[now_ms, next_look_ms, limit]
        )
        return [str(job_id) for job_id in reply]

    @shielded
    async def forget_unreported(self, job_id: str) -> None:
        """Stop looking at a job's final state (the job is gone, or was reported after all)."""
        await self._redis.zrem(self._keys.outbox_status_unreported, job_id)

    @shielded
    async def ended_without_final(
        self, statuses: Sequence[str], since_ms: int, page: int = 500
    ) -> list[str]:
        """Jobs created since ``since_ms`` that are in one of ``statuses`` and have no final report.

        These are ended jobs whose final state was never queued: the listener did not run (a
        replica died between the transition and the listener) or Redis failed in between.
        """
        found: list[str] = []
        for status in statuses:
            offset = 0
            while True:
                index = self._keys.index_status(status)
                ids = [
                    str(job_id)
                    for job_id in await self._redis.zrangebyscore(
                        index, since_ms, "+inf", start=offset, num=page
                    )
                ]
                found += await self._without_final(ids)
                if len(ids) < page:
                    break
                offset += page
        return found

    async def _without_final(self, job_ids: list[str]) -> list[str]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hexists(self._keys.status_record(job_id), "final")
            marked = await pipe.execute()
        return [job_id for job_id, has in zip(job_ids, marked, strict=True) if not has]

    @shielded
    async def delayed(self, limit: int = 100) -> list[StatusReport]:
        """The reports waiting for a retry, soonest first."""
        members = await self._redis.zrange(self._keys.outbox_status_delayed, 0, limit - 1)
        return [StatusReport.from_fields(orjson.loads(str(member))) for member in members]

    @shielded
    async def depth(self) -> OutboxDepth:
        """How many reports are due, waiting for a retry, and ended jobs not acknowledged."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self._keys.outbox_status)
            pipe.zcard(self._keys.outbox_status_delayed)
            pipe.zcard(self._keys.outbox_status_unreported)
            queued, delayed, unreported = await pipe.execute()
        return OutboxDepth(int(queued), int(delayed), int(unreported))

    @shielded
    async def prune_consumers(self, idle_ms: int) -> int:
        """Remove consumers (of replicas long gone) that hold nothing; return how many."""
        try:
            consumers = await self._redis.xinfo_consumers(self._keys.outbox_status, self._group)
        except ResponseError:
            return 0  # no stream or group yet: the worker creates them
        gone = [
            str(c["name"]) for c in consumers
            if int(c["pending"]) == 0 and int(c["idle"]) > idle_ms and c["name"] != self.consumer
        ]  # fmt: skip
        for name in gone:
            await self._redis.xgroup_delconsumer(self._keys.outbox_status, self._group, name)
        return len(gone)
