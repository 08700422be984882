"""One client's live log as Server-Sent Events (the format: docs/architecture.md).

The history after its `Last-Event-ID`, then live entries from the shared reader, without a gap or a
repeat between the two; `end` once the job is over.

Live entries come in batches that every client of the job shares (`Batch`): the events of a batch
are rendered and encoded once, by the first client that sends them, and the others send the same
bytes. A client only renders on its own at the seam between its history and the live entries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import structlog

from raibid_api.domain.jobs import Job, JobStatus
from raibid_api.errors import ServiceUnavailableError
from raibid_api.logs.entries import dropped_between, line_number, render_entry
from raibid_api.logs.fanout import Batch, LogFanout, Subscription, entry_key
from raibid_api.logs.sse import (
    RETRY_MS,
    SHUTDOWN_RETRY_MS,
    encode_comment,
    encode_event,
    encode_retry,
)
from raibid_api.observability import metrics
from raibid_api.storage.event_store import NO_ENTRY, STATUS_CHANNEL, EventStore

_log = structlog.get_logger("raibid_api.logs")

HISTORY_PAGE = 1_000
"""Entries read from the history per Redis call."""
HISTORY_READS = 2
"""Reads of streams' history (and of the job a stream follows) at once per process: a thousand
clients arriving together queue for these rather than each taking a connection from the pool."""
HEARTBEAT = encode_comment("heartbeat")
_VIEW = "job"  # the shared rendering of a batch for the per-job stream
SHUTTING_DOWN = encode_comment("server shutting down; reconnect") + encode_retry(SHUTDOWN_RETRY_MS)
"""How a stream ends when its server stops: the client reconnects soon, to another replica."""


@dataclass
class Progress:
    """Where one client's stream of one job is: the last entry and line sent, the final job."""

    last: str | None
    last_n: int | None = None
    final: Job | None = None

    def is_new(self, key: tuple[int, int]) -> bool:
        """Whether the entry of id order ``key`` comes after the last one sent."""
        return self.last is None or key > entry_key(self.last)


class Piece(NamedTuple):
    """One entry as a stream sends it."""

    key: tuple[int, int]
    entry_id: str
    n: int | None
    event: str
    data: dict[str, Any]
    final: Job | None


def gap_event(job_id: str | None, dropped: int | None) -> bytes:
    """The mark of missing entries (it carries no id: it does not move the resume position)."""
    return encode_event("gap", orjson.dumps({"job_id": job_id, "dropped": dropped}).decode())


def render_pieces(batch: Batch, show_job: Callable[[Job], Job]) -> list[Piece]:
    """The entries of ``batch`` rendered (a status as the API shows the job)."""
    pieces: list[Piece] = []
    for entry_id, fields in batch.entries:
        rendered = render_entry(entry_id, fields)
        data = rendered["data"]
        final = None
        if rendered["event"] == "status":
            data = show_job(data)
            final = data if JobStatus(data["status"]).is_terminal else None
        pieces.append(
            Piece(
                entry_key(entry_id), entry_id, line_number(fields), rendered["event"], data, final
            )
        )
    return pieces


class _Rendered(NamedTuple):
    """A batch as the per-job stream sends it: each event, and all of them at once."""

    pieces: list[tuple[Piece, bytes]]
    joined: bytes
    first_n: int | None
    last_n: int | None
    ends: bool


class LogFollower:
    """Streams a job's log to one client as SSE bytes, through the process's shared reader."""

    def __init__(
        self,
        events: EventStore,
        fanout: LogFanout,
        show_job: Callable[[Job], Job],
        *,
        heartbeat_s: float,
        retry_ms: int = RETRY_MS,
    ) -> None:
        """Read history from ``events`` and live entries through ``fanout``.

        Args:
            events: the job event streams.
            fanout: the shared reader.
            show_job: the job as the API shows it (adds its `links`).
            heartbeat_s: idle time after which a comment line keeps the connection open.
            retry_ms: the reconnection delay hinted to clients.
        """
        self._events = events
        self._fanout = fanout
        self._show_job = show_job
        self._heartbeat_s = heartbeat_s
        self._retry_ms = retry_ms
        self._history_reads = asyncio.Semaphore(HISTORY_READS)

    @property
    def fanout(self) -> LogFanout:
        """The shared reader behind every stream (its subscriber count is worth watching)."""
        return self._fanout

    @property
    def events(self) -> EventStore:
        """The event streams the history is read from."""
        return self._events

    @property
    def show_job(self) -> Callable[[Job], Job]:
        """The job as the API shows it."""
        return self._show_job

    @property
    def history_reads(self) -> asyncio.Semaphore:
        """The history reads that may run at once."""
        return self._history_reads

    @property
    def heartbeat_s(self) -> float:
        """Idle time after which a comment line keeps a connection open."""
        return self._heartbeat_s

    @property
    def retry_ms(self) -> int:
        """The reconnection delay hinted to clients."""
        return self._retry_ms

    async def run(self) -> None:
        """Run the shared reader until cancelled (one per process, beside the HTTP server)."""
        await self._fanout.run()

    async def stream(self, job: Job, after: str | None) -> AsyncIterator[bytes]:
        """The SSE stream of ``job`` from the entry after ``after`` (from the start when None).

        It subscribes before it reads the history, so live entries appended meanwhile wait in its
        inbox, and it skips any entry not newer than the last one sent.
        """
        metrics.SSE_CLIENTS.inc()
        try:
            yield encode_retry(self._retry_ms)
            async with contextlib.aclosing(self._follow(job, Progress(after))) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ServiceUnavailableError:
            # the answer has begun, so no error body: end it; the client comes back after `retry`
            _log.warning("log stream ended: Redis is unavailable", job_id=job["id"])
        finally:
            metrics.SSE_CLIENTS.dec()

    async def _follow(self, job: Job, progress: Progress) -> AsyncGenerator[bytes, None]:
        job_id = str(job["id"])
        async with self._fanout.subscribe(job_id) as inbox:
            async for chunk in history(
                self._events, job_id, progress, self._batch_bytes, self._history_reads
            ):
                yield chunk
            if progress.final is None and JobStatus(job["status"]).is_terminal:
                progress.final = job  # its terminal status came before ``after``
            if progress.final is None:
                async for chunk in self._live(inbox, progress):
                    yield chunk
        if progress.final is not None:
            yield encode_event("end", orjson.dumps(self._show_job(progress.final)).decode())

    def _live(self, inbox: Subscription, progress: Progress) -> AsyncIterator[bytes]:
        return live_chunks(
            inbox, self._heartbeat_s, self._fanout,
            lambda batch: self._batch_bytes(batch, progress),
            done=lambda: progress.final is not None,
        )  # fmt: skip

    def _render(self, batch: Batch) -> _Rendered:
        pieces: list[tuple[Piece, bytes]] = []
        parts: list[bytes] = []
        first_n = last_n = None
        ends = False
        for piece in render_pieces(batch, self._show_job):
            chunk = encode_event(piece.event, orjson.dumps(piece.data).decode(), piece.entry_id)
            pieces.append((piece, chunk))
            if not ends:
                if dropped := dropped_between(last_n, piece.n):
                    parts.append(gap_event(batch.channel, dropped))
                parts.append(chunk)
            if piece.n is not None:
                first_n = piece.n if first_n is None else first_n
                last_n = piece.n
            ends = ends or piece.final is not None
        return _Rendered(pieces, b"".join(parts), first_n, last_n, ends)

    def _batch_bytes(self, batch: Batch, progress: Progress) -> bytes:
        """The events of ``batch`` this client has not had, up to the job's terminal status."""
        if progress.final is not None:
            return b""
        rendered = batch.shared(_VIEW, self._render)
        if not rendered.ends and progress.is_new(batch.first):
            # the common case: the whole batch is new to this client, and shared as it is
            dropped = dropped_between(progress.last_n, rendered.first_n)
            progress.last = batch.entries[-1][0]
            progress.last_n = rendered.last_n if rendered.last_n is not None else progress.last_n
            return (
                gap_event(batch.channel, dropped) + rendered.joined if dropped else rendered.joined
            )
        parts: list[bytes] = []
        for piece, chunk in rendered.pieces:
            if progress.final is not None:
                break
            if not progress.is_new(piece.key):
                continue
            if dropped := dropped_between(progress.last_n, piece.n):
                parts.append(gap_event(batch.channel, dropped))
            parts.append(chunk)
            progress.last = piece.entry_id
            progress.last_n = piece.n if piece.n is not None else progress.last_n
            progress.final = piece.final
        return b"".join(parts)


async def history(
    events: EventStore,
    channel: str,
    progress: Progress,
    encode: Callable[[Batch, Progress], bytes],
    reads: asyncio.Semaphore,
) -> AsyncIterator[bytes]:
    """The stored entries of ``channel`` after ``progress.last``, a page at a time, encoded.

    A resume point that is no longer kept (trimmed, or dropped from a big log's middle) gives a
    `gap` event first, then the oldest kept entry after it.
    """
    cursor = progress.last
    if cursor is not None:
        async with reads:
            anchor, page = await events.resume(channel, cursor, HISTORY_PAGE)
        if anchor is not None:
            progress.last_n = line_number(anchor[1])
        elif page and cursor != NO_ENTRY:
            yield gap_event(None if channel == STATUS_CHANNEL else channel, None)
    else:
        async with reads:
            page = await events.read_after(channel, None, HISTORY_PAGE)
    while True:
        if page:
            chunk = encode(Batch(channel, page), progress)
            if chunk:
                yield chunk
        if len(page) < HISTORY_PAGE or progress.final is not None:
            return
        cursor = page[-1][0]
        async with reads:
            page = await events.read_after(channel, cursor, HISTORY_PAGE)


async def live_chunks(
    inbox: Subscription,
    heartbeat_s: float,
    fanout: LogFanout,
    encode: Callable[[Batch], bytes],
    done: Callable[[], bool] = lambda: False,
) -> AsyncIterator[bytes]:
    """The live part of a stream: each batch encoded as it comes, a heartbeat while idle.

    It goes on until ``done()``; it ends early when the subscription is dropped (too slow, or
    the server stops: then with the hint to reconnect soon), and the client resumes later.
    """
    while not done():
        batches = await inbox.receive(heartbeat_s)
        if batches is None:
            if fanout.stopping:
                yield SHUTTING_DOWN
            return
        chunk = b"".join([encode(batch) for batch in batches]) if batches else HEARTBEAT
        if chunk:
            yield chunk
