"""AgentService: the agent protocol (docs/architecture.md): claim, heartbeat, logs, complete."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from raibid_api.domain.jobs import (
    AttemptGuard,
    Clock,
    Job,
    JobId,
    JobStatus,
    format_time,
    parse_time_ms,
)
from raibid_api.errors import (
    InvalidInputError,
    JobNotFoundError,
    JobTokenError,
    PayloadTooLargeError,
    TransitionConflictError,
)
from raibid_api.jobs.handback import requeue_attempt
from raibid_api.jobs.heartbeat_hold import JobEvents, hold_until_status_change
from raibid_api.jobs.service import JobService
from raibid_api.observability import metrics
from raibid_api.storage.agent_store import AgentStore, AlreadyCompletedError, QueueStats
from raibid_api.storage.job_store import JobStore

_MAX_BLOCK_MS = 1000  # a long poll blocks in slices, so a client that leaves is noticed soon
_CONFLICT_RETRIES = 5
LOG_STREAMS = frozenset({"stdout", "stderr"})


def token_hash(token: str) -> str:
    """The sha256 hex a job token is stored as."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """A job handed to an agent, with the token for its calls about it."""

    job: Job
    token: str
    lease_expires_at: str


@dataclass(frozen=True)
class LeaseLimits:
    """How long a lease lasts and how big a log batch may be."""

    lease_ms: int
    max_batch_lines: int
    max_line_bytes: int
    max_attempts: int = 3
    """``jobs.max_attempts``: a job handed back after its last attempt fails (``agent_lost``)."""


class AgentService:
    """Hands jobs to agents and takes their reports, one job token per attempt."""

    def __init__(
        self, jobs: JobService, store: JobStore, agents: AgentStore, clock: Clock,
        limits: LeaseLimits, events: JobEvents | None = None,
    ) -> None:  # fmt: skip
        """``events`` lets a heartbeat wait for its job's next status; None: it answers at once."""
        self._jobs = jobs
        self._store = store
        self._agents = agents
        self._clock = clock
        self._limits = limits
        self._events = events
        self._draining = False

    def drain(self) -> None:
        """The server stops: long-polling claims answer "no job" within a second from now on.

        An open claim would otherwise hold the server's graceful shutdown until it timed out.
        """
        self._draining = True

    @property
    def lease_seconds(self) -> float:
        """How long a lease lasts without a heartbeat."""
        return self._limits.lease_ms / 1000

    async def _seen(
        self, agent_id: str, job_id: str | None, labels: Sequence[str] | None = None
    ) -> None:
        """Record an agent's visit; ``labels`` None keeps the ones it claimed with."""
        now = self._clock.now_ms()
        info: dict[str, object] = {"agent_id": agent_id, "job_id": job_id,
                                   "last_seen": format_time(now), "last_seen_ms": now}  # fmt: skip
        if labels is not None:
            info["labels"] = list(labels)
        await self._agents.record_agent(agent_id, info)

    async def claim(
        self, agent_id: str, labels: Sequence[str], wait: float,
        gone: Callable[[], Awaitable[bool]],
    ) -> Claim | None:  # fmt: skip
        """The next pending job for ``agent_id``, waiting up to ``wait`` seconds; None if none.

        ``gone`` tells whether the caller left, so a long poll stops early.
        """
        await self._seen(agent_id, None, labels)
        deadline = time.monotonic() + wait
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            entry = await self._agents.next_entry(
                agent_id, min(max(remaining_ms, 0), _MAX_BLOCK_MS)
            )
            if entry is not None and (self._draining or await gone()):
                await self._agents.return_entry(*entry)  # nobody would run it: the next agent's
                return None
            if entry is not None:
                claim = await self._take(agent_id, *entry)
                if claim is not None:
                    return claim
            elif remaining_ms <= 0 or self._draining or await gone():
                return None

    async def _take(self, agent_id: str, entry_id: str, job_id: str) -> Claim | None:
        job = await self._store.get(job_id)
        if job is None or job["status"] != JobStatus.PENDING:
            await self._agents.drop_entry(entry_id)  # the entry outlived its job's wait
            return None
        return await self._start(agent_id, job)

    async def claim_as_pod(
        self, pod_uid: str, agent_id: str, labels: Sequence[str], wait: float,
        gone: Callable[[], Awaitable[bool]], remember_ms: int,
    ) -> Claim | None:  # fmt: skip
        """`claim` for the agent pod ``pod_uid``, which claims at most one job in its life.

        While a claim of the pod waits, or once one got a job (remembered ``remember_ms``),
        every other claim with the pod's identity answers None at once: a token a build step
        took from its pod claims nothing.
        """
        if not await self._agents.reserve_pod(pod_uid, int((wait + 60) * 1000)):
            return None
        try:
            found = await self.claim(agent_id, labels, wait, gone)
        except BaseException:
            await self._agents.release_pod(pod_uid)
            raise
        if found is None:
            await self._agents.release_pod(pod_uid)
            return None
        await self._agents.settle_pod(pod_uid, str(found.job["id"]), remember_ms)
        return found

    async def claim_job(self, agent_id: str, job_id: str, attempt: int) -> Claim | None:
        """Hand ``agent_id`` exactly ``job_id`` at ``attempt``, if it waits at that attempt now.

        The claim of a claim token (`raibid_api.jobs.claim_tokens`): no queue entry is read, the
        job's entry stays in the stream and goes when the job ends, as for any running job. A job
        that runs already, ended, or moved on to another attempt answers None at once: the
        token's attempt will never be claimable again.
        """
        await self._seen(agent_id, None, [])
        job = await self._store.get(job_id)
        if job is None or job["status"] != JobStatus.PENDING or job["attempt"] != attempt:
            return None
        return await self._start(agent_id, job)

    async def _start(self, agent_id: str, job: Job) -> Claim | None:
        job_id = str(job["id"])
        token = secrets.token_urlsafe(32)
        now = self._clock.now_ms()
        lease_until = now + self._limits.lease_ms
        fields = {
            "agent_id": agent_id, "started_at": format_time(now), "_started_ms": now,
            "_lease_until": lease_until, "_token": token_hash(token), "_log_count": 0,
            "_last_batch": None,
        }  # fmt: skip
        started = f"[raibid] attempt {job['attempt']} started on agent {agent_id}"
        try:
            running = await self._store.transition(
                job, JobStatus.RUNNING, now, fields, note=("stdout", started)
            )
        except TransitionConflictError:
            return None  # cancelled between delivery and claim; the cancel removed its entry
        await self._seen(agent_id, job_id)
        return Claim(await self._jobs.announce(running), token, format_time(lease_until))

    async def heartbeat(
        self, job_id: JobId, token: str, wait: float = 0.0,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[bool, str]:  # fmt: skip
        """Extend the lease; (whether the agent must stop, when the lease ends).

        With ``wait``, the lease is extended at once, then the answer waits until the job stops
        running (it was cancelled or ended) or ``wait`` seconds pass (at most half a lease, so
        the next heartbeat comes in time), and tells the state then: a job its agent completed
        meanwhile answers ``cancel`` (it is over), one requeued raises `JobTokenError`.
        """
        cancel, until = await self._beat(job_id, token)
        hold = min(wait, self.lease_seconds / 2)
        if cancel or hold <= 0 or self._events is None or self._draining:
            return cancel, until
        gone = gone or _stayed

        async def running() -> bool:
            return (await self._agents.lease_fields(job_id)).get("status") == JobStatus.RUNNING

        await hold_until_status_change(self._events, job_id, hold, running, gone)
        if await gone():
            return cancel, until  # nobody reads the answer
        try:
            # the agent was seen when this heartbeat came in; the answer is not a new visit
            return await self._beat(job_id, token, seen=False)
        except AlreadyCompletedError:
            return True, until  # its agent completed the job while this heartbeat was held

    async def _beat(self, job_id: JobId, token: str, *, seen: bool = True) -> tuple[bool, str]:
        beat = await self._agents.heartbeat(
            job_id, token_hash(token), self._clock.now_ms(), self._limits.lease_ms
        )
        agent = (await self._agents.lease_fields(job_id)).get("agent_id") if seen else None
        if agent:
            await self._seen(agent, job_id)
        return beat.cancel, format_time(beat.lease_until_ms)

    async def record_commit(self, job_id: JobId, token: str, commit: str) -> str | None:
        """Record the commit the agent checked out, when the job names none; the job's commit.

        A job made without a commit (a manual trigger on a branch) gets the one its first
        attempt built; a job that has one keeps it.
        """
        return await self._agents.record_commit(job_id, token_hash(token), commit.lower())

    def _check_batch(self, lines: Sequence[tuple[str, str]]) -> None:
        if len(lines) > self._limits.max_batch_lines:
            raise PayloadTooLargeError(
                f"a log batch holds at most {self._limits.max_batch_lines} lines"
            )
        for stream, _ in lines:
            if stream not in LOG_STREAMS:
                raise InvalidInputError(f"stream must be stdout or stderr, not {stream!r}")

    async def append_logs(
        self, job_id: JobId, token: str, offset: int | None, lines: Sequence[tuple[str, str]],
        batch_id: str | None = None,
    ) -> int:  # fmt: skip
        """Append a batch of lines in order, exactly once; return the attempt's line count.

        ``offset`` (else ``batch_id``, the same for a batch sent again) makes it exactly once.
        """
        self._check_batch(lines)
        most = self._limits.max_line_bytes
        lines = [(stream, cut_line(line, most)) for stream, line in lines]
        now = self._clock.now_ms()
        count, started_ms = await self._agents.append_logs(
            job_id, token_hash(token), now, format_time(now), offset, lines, batch_id
        )
        metrics.logs_ingested(len(lines), sum(len(line.encode()) for _, line in lines))
        if started_ms is not None:
            metrics.stage("claimed_to_first_log", (now - started_ms) / 1000)
        return count

    async def complete(
        self, job_id: JobId, token: str, status: JobStatus, exit_code: int | None,
        reason: str | None,
    ) -> Job:  # fmt: skip
        """End the job the agent holds; a repeat with the same outcome answers the same job.

        Raises:
            JobTokenError: not the job's current token, or the lease is over.
            AlreadyCompletedError: completed before with another outcome.
        """
        digest = token_hash(token)
        for _ in range(_CONFLICT_RETRIES):
            private = await self._agents.lease_fields(job_id)
            if not private:
                raise JobNotFoundError(job_id)
            if not hmac.compare_digest(private.get("_token", ""), digest):
                raise JobTokenError("this job token is not valid for the job's current attempt")
            if "_completed" in private:
                if private["_completed"] != status:
                    raise AlreadyCompletedError(
                        f"job {job_id} was completed as {private['_completed']}",
                        private["_completed"],
                    )
                return await self._jobs.get(job_id)
            job = await self._finish(job_id, digest, status, exit_code, reason)
            if job is not None:
                first_log = private.get("_first_log_ms")
                if first_log is not None and job["status"] == status:
                    finished = parse_time_ms(str(job["finished_at"]))
                    metrics.stage("first_log_to_finished", (finished - int(first_log)) / 1000)
                return job
        raise TransitionConflictError(f"job {job_id} keeps changing; try again")

    async def release(self, job_id: JobId, token: str) -> Job:
        """The agent gives its running job back (it is shutting down): queue the next attempt now.

        The job goes back in the queue at once, as its next attempt (or fails with
        ``agent_lost`` after its last), with a line in its log saying why, instead of waiting for
        its lease to run out. A job that ended meanwhile (cancelled, timed out) stays as it is;
        either way the answer is the job after the call, and the token stops working.

        Raises:
            JobNotFoundError: no such job.
            JobTokenError: not the job's current token (already released, or requeued).
            AlreadyCompletedError: the agent completed the job with this token.
        """
        digest = token_hash(token)
        private = await self._agents.lease_fields(job_id)
        if not private:
            raise JobNotFoundError(job_id)
        if not hmac.compare_digest(private.get("_token", ""), digest):
            raise JobTokenError("this job token is not valid for the job's current attempt")
        if "_completed" in private:
            raise AlreadyCompletedError(
                f"job {job_id} was completed as {private['_completed']}", private["_completed"]
            )
        job = await self._jobs.get(job_id)
        if job["status"] != JobStatus.RUNNING:
            return job
        why = (f"the agent of attempt {job['attempt']} ({job['agent_id']}) handed the job back "
               "as it shut down")  # fmt: skip
        try:
            after = await requeue_attempt(
                self._jobs, self._store, self._clock, job, AttemptGuard(digest), why=why,
                max_attempts=self._limits.max_attempts,
            )  # fmt: skip
        except TransitionConflictError:
            return await self._jobs.get(job_id)  # it ended meanwhile
        if job["agent_id"]:
            await self._seen(str(job["agent_id"]), None)
        return after

    async def _finish(
        self, job_id: JobId, digest: str, status: JobStatus, exit_code: int | None,
        reason: str | None,
    ) -> Job | None:  # fmt: skip
        job = await self._jobs.get(job_id)
        now = self._clock.now_ms()
        if job["status"] != JobStatus.RUNNING:
            marked = await self._agents.mark_completed(job_id, digest, now, status)
            return job if marked else None
        fields: dict[str, object] = {
            "exit_code": exit_code, "reason": reason, "finished_at": format_time(now),
            "_completed": status,
        }  # fmt: skip
        if job["started_at"]:
            fields["duration"] = round((now - parse_time_ms(job["started_at"])) / 1000, 3)
        try:
            after = await self._store.transition(
                job, status, now, fields, guard=AttemptGuard(digest)
            )
        except TransitionConflictError:
            return None
        if job["agent_id"]:
            await self._seen(str(job["agent_id"]), None)
        return await self._jobs.announce(after)

    async def agents(self) -> list[dict[str, object]]:
        """Every agent seen, newest heartbeat first."""
        found = await self._agents.agents()
        return sorted(found, key=lambda a: str(a.get("last_seen", "")), reverse=True)

    async def queue(self) -> dict[str, object]:
        """Jobs waiting, jobs held, and how long the oldest has waited (seconds)."""
        stats: QueueStats = await self._agents.queue_stats()
        oldest = stats.oldest_pending_ms
        age = round((self._clock.now_ms() - oldest) / 1000, 3) if oldest is not None else None
        return {"depth": stats.pending, "claimed": stats.running, "oldest_waiting_seconds": age}


async def _stayed() -> bool:
    return False


def cut_line(line: str, most: int) -> str:
    """``line``, or when it holds more than ``most`` UTF-8 bytes its start and a marker.

    The marker says how many bytes were cut: `` [… 12345 bytes cut]``; the result holds at most
    ``most`` bytes.
    """
    raw = line.encode()
    if len(raw) <= most:
        return line
    keep = most - len(f" [… {len(raw)} bytes cut]".encode())  # the count never exceeds the size
    # errors="ignore" drops a character the cut split in half rather than inventing one
    kept = raw[:keep].decode(errors="ignore")
    return f"{kept} [… {len(raw) - len(kept.encode())} bytes cut]"
