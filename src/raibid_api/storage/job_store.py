"""Job records in Redis: the hash, the indexes, the queue entry, and the retention that ends them.

Every write here is one Lua script (`storage/scripts/`) or one MULTI/EXEC, so a reader never sees a
job without its indexes or its queue entry.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import cast

import orjson
import structlog
from redis.asyncio import Redis

from raibid_api.domain.badges import Badge
from raibid_api.domain.jobs import (
    AttemptGuard,
    Delivery,
    Job,
    JobFilter,
    JobStatus,
    Supersession,
    content_fingerprint,
    format_time,
)
from raibid_api.domain.limits import RateLimit
from raibid_api.domain.states import check_transition
from raibid_api.storage.codec import (
    CREATED_MS,
    DEFAULT_BRANCH,
    decode_job,
    encode_fields,
    encode_update,
)
from raibid_api.storage.connection import create_group, shielded
from raibid_api.storage.keys import GROUP, Keys
from raibid_api.storage.scripts import CreateCall, CreateOutcome, Scripts

FALLBACK_BRANCH = "main"
"""The branch a badge shows when none is asked for and the forge never named a default."""

_log = structlog.get_logger("raibid_api.storage")
DELIVERY_TTL_S = 7 * 86_400
LATEST_TTL_S = 7 * 86_400
_SEP = "\x1f"


def index_keys(keys: Keys, job: Mapping[str, object]) -> list[str]:
    """Every index set a job is in while it has its current status."""
    found = [
        keys.index_all,
        keys.index_status(str(job["status"])),
        keys.index_repo(str(job["repo"])),
        keys.index_status_repo(str(job["status"]), str(job["repo"])),
        keys.index_event(str(job["event"])),
    ]
    if job.get("branch"):
        found.append(keys.index_branch(str(job["branch"])))
    return found


class JobStore:
    """Reads and atomic writes of job records."""

    def __init__(
        self, redis: Redis, keys: Keys, *, retention_s: int, status_maxlen: int,
        content_ttl_s: int = 86_400, replica_acks: int = 0, replica_timeout_ms: int = 500,
    ) -> None:  # fmt: skip
        self._redis = redis
        self._keys = keys
        self._scripts = Scripts(redis, replica_timeout_ms=replica_timeout_ms)
        self._replica_acks = replica_acks
        self._cursor_secret: str | None = None
        self._retention_s = retention_s
        self._status_maxlen = status_maxlen
        self._content_ttl_s = content_ttl_s
        self._templates = keys.job_templates()  # the same on every create

    @shielded
    async def ensure_queue_group(self) -> bool:
        """Create the agents' consumer group at id 0 unless it exists; True when it was missing."""
        return await create_group(self._redis, self._keys.queue, GROUP)

    async def repair(self) -> None:
        """Put back what the server needs and Redis lost (a restart without data, a flush).

        The agents' queue group, and the cursor secret this process holds, so that every
        replica keeps signing cursors alike. Raises when Redis refuses (then it is not ready).
        """
        if await self.ensure_queue_group():
            _log.warning("redis had lost the agents' queue group; created it again")
        if self._cursor_secret is not None:
            await self._restore_cursor_secret(self._cursor_secret)

    @shielded
    async def _restore_cursor_secret(self, secret: str) -> None:
        await self._redis.set(self._keys.cursor_secret, secret, nx=True)

    async def create(
        self, job: Job, created_ms: int, *, delivery: Delivery | None = None,
        coalesce: bool = False, limit: RateLimit | None = None,
        supersede: Supersession | None = None, dry_run: bool = False,
        default_branch: str | None = None,
    ) -> CreateOutcome:  # fmt: skip
        """Store a new job with its indexes and queue entry, in one step (`job_create.lua`).

        Not `shielded`: the call runs in a `ScriptBatcher`'s task, which a caller's
        cancellation does not reach.

        Args:
            job: the Job JSON (without links).
            created_ms: its creation time, the score in every index.
            delivery: the forge delivery; a known one returns the job it made.
            coalesce: coalesce on what is built (repo, event, ref, commit): while a job building
                the same is pending or running, that job is returned instead of a new one.
            limit: count the request against these sliding windows; a full one writes nothing
                and raises `RateLimitedError`.
            supersede: make the job its line's newest and end the pending job it supersedes
                (at ``created_ms``, also the time the rate limits count).
            dry_run: take the same decisions on the same reads and write nothing at all (the
                rate limits are checked, not counted); the outcome tells what a real run would
                have done.
            default_branch: the repository's default branch as the forge named it; kept with
                the job, it becomes the repo's badge default when the job ends.
        """
        job_id = str(job["id"])
        keys = self._keys
        call = CreateCall(
            job_id=job_id,
            created_ms=created_ms,
            job_json=orjson.dumps(job),
            fields=encode_fields(job)
            | {CREATED_MS: str(created_ms)}
            | ({DEFAULT_BRANCH: default_branch} if default_branch else {}),
            job_key=keys.job(job_id),
            queue_key=keys.queue,
            expiry_key=keys.index_expiry,
            status_events_key=keys.status_events,
            index_keys=index_keys(keys, job),
            delivery_key=keys.delivery(delivery.forge, delivery.delivery_id) if delivery else None,
            delivery_ttl_s=DELIVERY_TTL_S,
            content_key=keys.content(content_fingerprint(job)) if coalesce else None,
            content_ttl_s=self._content_ttl_s,
            rate_limit=limit,
            rate_limit_keys=[keys.rate_limit(scope, subject) for scope, subject in limit.subjects]
            if limit
            else [],
            line_key=keys.latest_job(supersede.repo, supersede.line) if supersede else None,
            line_ttl_s=LATEST_TTL_S,
            supersede=supersede,
            retention_s=self._retention_s,
            status_maxlen=self._status_maxlen,
            group=GROUP,
            separator=_SEP,
            templates=self._templates,
            dry_run=dry_run,
            # a delivery is acknowledged only once it is safe; else it goes to the disk spool
            replicas=self._replica_acks if delivery is not None and not dry_run else 0,
        )
        return await self._scripts.create_job(call)

    @shielded
    async def get(self, job_id: str) -> Job | None:
        """The job, or None when there is no such job."""
        fields = await self._redis.hgetall(self._keys.job(job_id))
        return decode_job(_as_text(fields)) if fields else None

    @shielded
    async def transition(
        self, job: Job, target: str, now_ms: int, fields: Mapping[str, object] | None = None,
        *, requeue: bool = False, guard: AttemptGuard | None = None,
        note: tuple[str, str] | None = None,
    ) -> Job:  # fmt: skip
        """Move ``job`` from the status it has in ``job`` to ``target``; return the job after it.

        A terminal ``target`` acks and deletes the queue entry and starts the retention clock;
        ``requeue`` puts the job back in the queue under a fresh entry. A ``guard`` makes the
        move happen only for the attempt it names (and, if it says so, once its lease ended).
        A ``note`` (stream, line) goes into the job's log just before the status change, in the
        same step: the log says why the attempt started or ended.

        Raises:
            ValueError: the state machine has no edge from the job's status to ``target`` (a
                programming error: `raibid_api.domain.states.TRANSITIONS`).
            JobNotFoundError: the job is gone.
            TransitionConflictError: the job is no longer in the status ``job`` shows.
        """
        job_id = str(job["id"])
        expected = str(job["status"])
        check_transition(JobStatus(expected), JobStatus(target))  # before any I/O
        public = {k: v for k, v in (fields or {}).items() if not k.startswith("_")}
        after: Job = dict(job) | public | {"status": target}
        terminal = JobStatus(target).is_terminal
        expiry_member = _SEP.join(
            [job_id, target, str(job["repo"]), str(job.get("branch") or ""), str(job["event"])]
        )
        await self._scripts.transition(
            [
                self._keys.job(job_id),
                self._keys.index_status(expected),
                self._keys.index_status(target),
                self._keys.events(job_id),
                self._keys.queue,
                self._keys.index_expiry,
                self._keys.content(content_fingerprint(job)),
                self._keys.index_status_repo(expected, str(job["repo"])),
                self._keys.index_status_repo(target, str(job["repo"])),
                self._keys.status_events,
                self._keys.badge(str(job["repo"])),
            ],
            job_id=job_id,
            expected=expected,
            target=target,
            terminal=terminal,
            retention_s=self._retention_s,
            status_maxlen=self._status_maxlen,
            group=GROUP,
            expiry_ms=now_ms + self._retention_s * 1000,
            expiry_member=expiry_member,
            requeue_json=orjson.dumps(after).decode() if requeue else "",
            token_hash=guard.token_hash if guard else "",
            lease_ended_by=guard.lease_ended_by if guard else None,
            fields=encode_update(fields or {}),
            note=_note_json(note, now_ms),
        )
        return after

    @shielded
    async def list_page(
        self, flt: JobFilter, after: tuple[int, str] | None, limit: int
    ) -> tuple[int, list[tuple[Job, int]]]:
        """The number of jobs matching ``flt`` and the next ``limit`` of them after ``after``.

        Args:
            flt: the filter.
            after: (score, id) of the last job of the previous page, or None for the first page.
            limit: how many to return at most.
        """
        indexes = []
        if flt.status is not None and flt.repo is not None:
            indexes.append(self._keys.index_status_repo(flt.status, flt.repo))
        elif flt.status is not None:
            indexes.append(self._keys.index_status(flt.status))
        elif flt.repo is not None:
            indexes.append(self._keys.index_repo(flt.repo))
        if flt.branch is not None:
            indexes.append(self._keys.index_branch(flt.branch))
        if flt.event is not None:
            indexes.append(self._keys.index_event(flt.event))
        total, page = await self._scripts.list_jobs(
            self._keys.list_scratch(uuid.uuid4().hex),
            indexes or [self._keys.index_all],
            upper=str(after[0]) if after else "+inf",
            cursor_id=after[1] if after else "",
            lower=str(flt.since_ms) if flt.since_ms is not None else "-inf",
            limit=limit,
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id, _ in page:
                pipe.hgetall(self._keys.job(job_id))
            records = await pipe.execute()
        jobs = [
            (decode_job(_as_text(fields)), score)
            for fields, (_, score) in zip(records, page, strict=True)
            if fields
        ]
        return total, jobs

    @shielded
    async def prune_expired(self, now_ms: int, batch: int = 500) -> int:
        """Remove ended jobs whose retention is over from every index; return how many."""
        members = [
            str(member)
            for member in await self._redis.zrangebyscore(
                self._keys.index_expiry, "-inf", now_ms, start=0, num=batch
            )
        ]
        if not members:
            return 0
        async with self._redis.pipeline(transaction=True) as pipe:
            for member in members:
                job_id, status, repo, branch, event = member.split(_SEP)
                for index in (
                    self._keys.index_all,
                    self._keys.index_status(status),
                    self._keys.index_repo(repo),
                    self._keys.index_status_repo(status, repo),
                    self._keys.index_event(event),
                    *([self._keys.index_branch(branch)] if branch else []),
                ):
                    pipe.zrem(index, job_id)
                pipe.delete(self._keys.job(job_id), self._keys.events(job_id))
                pipe.zrem(self._keys.index_expiry, member)
            await pipe.execute()
        return len(members)

    @shielded
    async def badge(self, repo: str, branch: str | None) -> Badge:
        """The newest finished job of ``branch`` (default: the repo's default branch, else main).

        One HMGET; a second HGET when no branch is asked for and the default is not ``main``.
        """
        key = self._keys.badge(repo)
        guess = branch or FALLBACK_BRANCH
        default, held = await self._redis.hmget(key, ["default", f"branch:{guess}"])
        if branch is None and default and default != guess:
            guess = str(default)
            held = await self._redis.hget(key, f"branch:{guess}")
        if not held:
            return Badge(guess, None, None)
        _, status, job_id = str(held).split(" ", 2)
        return Badge(guess, JobStatus(status), job_id)

    @shielded
    async def ping(self) -> None:
        """Raise unless Redis answers."""
        await self._redis.ping()

    @shielded
    async def cursor_secret(self) -> bytes:
        """The key that signs pagination cursors, shared by every replica through Redis."""
        await self._redis.set(self._keys.cursor_secret, secrets.token_hex(32), nx=True)
        value = str(await self._redis.get(self._keys.cursor_secret))
        self._cursor_secret = value
        return value.encode()

    @shielded
    async def stream_token_secret(self) -> bytes:
        """The key that signs stream tokens when none is configured, shared through Redis."""
        await self._redis.set(self._keys.stream_token_secret, secrets.token_hex(32), nx=True)
        value = await self._redis.get(self._keys.stream_token_secret)
        return str(value).encode()


def _as_text(fields: object) -> dict[str, str]:
    # the client decodes replies (decode_responses=True); only redis-py's annotations say bytes
    return cast("dict[str, str]", fields)


def _note_json(note: tuple[str, str] | None, now_ms: int) -> str:
    if note is None:
        return ""
    stream, line = note
    return orjson.dumps({"t": format_time(now_ms), "stream": stream, "line": line}).decode()
