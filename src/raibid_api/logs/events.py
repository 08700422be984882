"""`GET /events`: every job's status changes, or the logs and statuses of several jobs, as SSE.

Both are fed by the process's one shared reader (`LogFanout`) and resume exactly:

- every job's status changes come from one stream (``P:events:status``), so an event's id is
  that stream's entry id;
- several jobs' entries come from one stream each, so an event's id is a *vector*: the last entry
  id of every job, comma-joined in the order of the request's jobs (``0-0``: none yet). A client
  resuming with it gets, for each job, exactly the entries after its component.

A batch of live entries is rendered once for all the clients that share it (`Batch.shared`); a
client only adds what is its own (the id vector, its filter).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
import structlog

from raibid_api.domain.jobs import Job, JobStatus
from raibid_api.errors import InvalidInputError, ServiceUnavailableError
from raibid_api.logs.entries import dropped_between
from raibid_api.logs.fanout import Batch, entry_key
from raibid_api.logs.follow import (
    LogFollower,
    Piece,
    Progress,
    gap_event,
    history,
    live_chunks,
    render_pieces,
)
from raibid_api.logs.sse import encode_event, encode_retry, is_entry_id
from raibid_api.observability import metrics
from raibid_api.storage.codec import decode_job
from raibid_api.storage.event_store import NO_ENTRY, STATUS_CHANNEL

_log = structlog.get_logger("raibid_api.logs")

MAX_EVENT_JOBS = 50
"""The most jobs one `/events?jobs=` stream follows."""
_STATUS_VIEW = "status"
_JOBS_VIEW = "jobs"


@dataclass(frozen=True)
class StatusFilter:
    """Which jobs' status changes a client wants: every field given must match (None: any)."""

    repo: str | None = None
    branch: str | None = None
    statuses: frozenset[str] = field(default_factory=frozenset)

    def matches(self, repo: str | None, branch: str | None, status: str | None) -> bool:
        """Whether a job with these fields passes."""
        return (
            (self.repo is None or repo == self.repo)
            and (self.branch is None or branch == self.branch)
            and (not self.statuses or status in self.statuses)
        )

    @property
    def is_everything(self) -> bool:
        """Whether every job passes."""
        return self.repo is None and self.branch is None and not self.statuses

    def canonical(self) -> dict[str, Any]:
        """The filter as JSON, in one form whatever order it was given in."""
        return {"repo": self.repo, "branch": self.branch, "status": sorted(self.statuses)}


def parse_statuses(text: str | None) -> frozenset[str]:
    """The statuses of a comma-separated ``status`` parameter.

    Raises:
        InvalidInputError: an unknown status.
    """
    if not text:
        return frozenset()
    names = {part.strip() for part in text.split(",") if part.strip()}
    known = {status.value for status in JobStatus}
    unknown = sorted(names - known)
    if unknown:
        raise InvalidInputError(
            f"unknown status {unknown[0]!r}; use {', '.join(sorted(known))}", field="status"
        )
    return frozenset(names)


def parse_job_vector(text: str | None, count: int) -> list[str] | None:
    """The resume vector of a `/events?jobs=` stream: one entry id per job (None: none given).

    Raises:
        InvalidInputError: not ``count`` comma-separated entry ids.
    """
    if not text:
        return None
    parts = text.split(",")
    if len(parts) != count or not all(is_entry_id(part) for part in parts):
        raise InvalidInputError(
            f"Last-Event-ID of a stream of {count} jobs must be {count} comma-separated event "
            "ids, such as 1700000000000-0 (0-0: none yet); reconnect with the same jobs"
        )
    return parts


class _StatusPiece(NamedTuple):
    key: tuple[int, int]
    entry_id: str
    repo: str | None
    branch: str | None
    status: str | None
    chunk: bytes


class _StatusRendered(NamedTuple):
    pieces: list[_StatusPiece]
    joined: bytes


class _JobsRendered(NamedTuple):
    """A batch as `/events?jobs=` streams send it: each event's id and the rest of it."""

    pieces: list[tuple[Piece, bytes, bytes]]
    alone: bytes  # every event, for a client of this job alone (its id is the entry id)
    first_n: int | None
    last_n: int | None
    unusual: bool  # lines dropped inside the batch, or the job ends in it


@dataclass
class _Followed:
    """One job of a `/events?jobs=` stream: where its client is in it."""

    job: Job
    progress: Progress


class EventStreams:
    """The `/events` streams, beside the per-job ones of the same shared reader."""

    def __init__(self, logs: LogFollower) -> None:
        self._logs = logs
        self._fanout = logs.fanout
        self._events = logs.events
        self._show_job = logs.show_job

    # every job's status changes

    async def statuses(self, flt: StatusFilter, after: str | None) -> AsyncIterator[bytes]:
        """Every job's status changes that pass ``flt``, after ``after`` (None: from now on)."""
        metrics.SSE_CLIENTS.inc()
        try:
            yield encode_retry(self._logs.retry_ms)
            async with contextlib.aclosing(self._statuses(flt, after)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ServiceUnavailableError:
            _log.warning("event stream ended: Redis is unavailable")
        finally:
            metrics.SSE_CLIENTS.dec()

    async def _statuses(self, flt: StatusFilter, after: str | None) -> AsyncGenerator[bytes, None]:
        async with self._fanout.subscribe(STATUS_CHANNEL) as inbox:
            progress = Progress(after)

            def encode(batch: Batch, progress: Progress) -> bytes:
                return self._status_bytes(batch, progress, flt)

            if after is None:
                # from now on: every entry after the reader's position reaches the inbox
                progress.last = self._fanout.cursor(STATUS_CHANNEL) or NO_ENTRY
            else:
                async for chunk in history(
                    self._events, STATUS_CHANNEL, progress, encode, self._logs.history_reads
                ):
                    yield chunk
            yield _ready(progress.last or NO_ENTRY)
            live = live_chunks(
                inbox, self._logs.heartbeat_s, self._fanout, lambda b: encode(b, progress)
            )
            async for chunk in live:
                yield chunk

    def _render_statuses(self, batch: Batch) -> _StatusRendered:
        pieces = []
        for entry_id, fields in batch.entries:
            job_id = fields.get("job_id", "")
            data = self._show_job(decode_job(fields)) | {"job_id": job_id}
            chunk = encode_event("status", orjson.dumps(data).decode(), entry_id)
            pieces.append(
                _StatusPiece(
                    entry_key(entry_id), entry_id, fields.get("repo"), fields.get("branch"),
                    fields.get("status"), chunk,
                )
            )  # fmt: skip
        return _StatusRendered(pieces, b"".join(piece.chunk for piece in pieces))

    def _status_bytes(self, batch: Batch, progress: Progress, flt: StatusFilter) -> bytes:
        rendered = batch.shared(_STATUS_VIEW, self._render_statuses)
        if flt.is_everything and progress.is_new(batch.first):
            progress.last = batch.entries[-1][0]
            return rendered.joined
        parts = []
        for piece in rendered.pieces:
            if not progress.is_new(piece.key):
                continue
            progress.last = piece.entry_id
            if flt.matches(piece.repo, piece.branch, piece.status):
                parts.append(piece.chunk)
        return b"".join(parts)

    # several jobs' logs and statuses

    async def jobs(self, jobs: Sequence[Job], after: list[str] | None) -> AsyncIterator[bytes]:
        """The entries of ``jobs`` after each one's component of ``after`` (None: from the start).

        Ends with `end` once every job is over.
        """
        vector = after or [NO_ENTRY] * len(jobs)
        followed = [_Followed(job, Progress(last)) for job, last in zip(jobs, vector, strict=True)]
        metrics.SSE_CLIENTS.inc()
        try:
            yield encode_retry(self._logs.retry_ms)
            async with contextlib.aclosing(self._jobs(followed)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ServiceUnavailableError:
            _log.warning("event stream ended: Redis is unavailable")
        finally:
            metrics.SSE_CLIENTS.dec()

    async def _jobs(self, followed: list[_Followed]) -> AsyncGenerator[bytes, None]:
        index = {str(f.job["id"]): i for i, f in enumerate(followed)}
        vector = [f.progress.last or NO_ENTRY for f in followed]

        def encode(batch: Batch, progress: Progress) -> bytes:
            return self._jobs_bytes(batch, progress, index[batch.channel], vector)

        async with self._fanout.subscribe(*index) as inbox:
            for f in followed:
                job_id = str(f.job["id"])
                async for chunk in history(
                    self._events, job_id, f.progress, encode, self._logs.history_reads
                ):
                    yield chunk
                if f.progress.final is None and JobStatus(f.job["status"]).is_terminal:
                    f.progress.final = f.job  # its terminal status came before the resume point
            yield _ready(",".join(vector))
            live = live_chunks(
                inbox, self._logs.heartbeat_s, self._fanout,
                lambda batch: encode(batch, followed[index[batch.channel]].progress),
                done=lambda: all(f.progress.final is not None for f in followed),
            )  # fmt: skip
            async for chunk in live:
                yield chunk
        if not all(f.progress.final is not None for f in followed):
            return  # the subscription was dropped (too slow, or the server stops): no end
        finals = [self._show_job(f.progress.final) for f in followed if f.progress.final]
        yield encode_event("end", orjson.dumps({"job_id": None, "jobs": finals}).decode())

    def _render_jobs(self, batch: Batch) -> _JobsRendered:
        pieces = []
        first_n = last_n = None
        gaps = ends = False
        for piece in render_pieces(batch, self._show_job):
            data = piece.data | {"job_id": batch.channel}
            body = encode_event(piece.event, orjson.dumps(data).decode())
            pieces.append((piece, piece.entry_id.encode(), b"\n" + body))
            gaps = gaps or dropped_between(last_n, piece.n) > 0
            if piece.n is not None:
                first_n = piece.n if first_n is None else first_n
                last_n = piece.n
            ends = ends or piece.final is not None
        alone = b"".join([b"id: " + entry_id + rest for _, entry_id, rest in pieces])
        return _JobsRendered(pieces, alone, first_n, last_n, gaps or ends)

    def _jobs_bytes(self, batch: Batch, progress: Progress, at: int, vector: list[str]) -> bytes:
        """This client's events of ``batch``: shared bodies, each after its own id vector.

        Within a batch only this job's component of the vector moves, so the rest of the id is
        worked out once per batch; a client of one job sends the batch's bytes as they are.
        """
        if progress.final is not None:
            return b""
        rendered = batch.shared(_JOBS_VIEW, self._render_jobs)
        if (
            not rendered.unusual
            and progress.is_new(batch.first)
            and not dropped_between(progress.last_n, rendered.first_n)
        ):
            progress.last = vector[at] = batch.entries[-1][0]
            progress.last_n = rendered.last_n if rendered.last_n is not None else progress.last_n
            if len(vector) == 1:
                return rendered.alone
            before = "".join(f"{v}," for v in vector[:at]).encode()
            after = "".join(f",{v}" for v in vector[at + 1 :]).encode()
            head = b"id: " + before
            return b"".join(
                [head + entry_id + after + rest for _, entry_id, rest in rendered.pieces]
            )
        parts: list[bytes] = []
        for piece, _, rest in rendered.pieces:
            if progress.final is not None:
                break
            if not progress.is_new(piece.key):
                continue
            if dropped := dropped_between(progress.last_n, piece.n):
                parts.append(gap_event(batch.channel, dropped))
            progress.last = vector[at] = piece.entry_id
            progress.last_n = piece.n if piece.n is not None else progress.last_n
            progress.final = piece.final
            parts.append(b"id: " + ",".join(vector).encode() + rest)
        return b"".join(parts)


def _ready(position: str) -> bytes:
    """The event that says live events follow; its id is the resume position so far."""
    return encode_event("ready", orjson.dumps({"job_id": None}).decode(), position)
