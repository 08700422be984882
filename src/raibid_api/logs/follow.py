"""One client's live log as Server-Sent Events (the format: docs/architecture.md).

The history after its `Last-Event-ID`, then live entries from the shared reader, without a gap or a
repeat between the two; `end` once the job is over.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass

import orjson
import structlog

from raibid_api.domain.jobs import Job, JobStatus
from raibid_api.errors import ServiceUnavailableError
from raibid_api.logs.entries import render_entry
from raibid_api.logs.fanout import LogFanout, Subscription, entry_key
from raibid_api.logs.sse import (
    RETRY_MS,
    SHUTDOWN_RETRY_MS,
    encode_comment,
    encode_event,
    encode_retry,
)
from raibid_api.storage.event_store import Entry, EventStore

_log = structlog.get_logger("raibid_api.logs")

HISTORY_PAGE = 1_000
"""Entries read from the history per Redis call."""
HEARTBEAT = encode_comment("heartbeat")
SHUTTING_DOWN = encode_comment("server shutting down; reconnect") + encode_retry(SHUTDOWN_RETRY_MS)
"""How a stream ends when its server stops: the client reconnects soon, to another replica."""


@dataclass
class _Progress:
    """Where one client's stream is: the last entry it was sent, and the job once it ended."""

    last: str | None
    final: Job | None = None

    def is_new(self, entry_id: str) -> bool:
        return self.last is None or entry_key(entry_id) > entry_key(self.last)


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

    @property
    def fanout(self) -> LogFanout:
        """The shared reader behind every stream (its subscriber count is worth watching)."""
        return self._fanout

    async def run(self) -> None:
        """Run the shared reader until cancelled (one per process, beside the HTTP server)."""
        await self._fanout.run()

    async def stream(self, job: Job, after: str | None) -> AsyncIterator[bytes]:
        """The SSE stream of ``job`` from the entry after ``after`` (from the start when None).

        It subscribes before it reads the history, so live entries appended meanwhile wait in its
        inbox, and it skips any entry not newer than the last one sent.
        """
        yield encode_retry(self._retry_ms)
        try:
            async with contextlib.aclosing(self._follow(job, _Progress(after))) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ServiceUnavailableError:
            # the answer has begun, so no error body: end it; the client comes back after `retry`
            _log.warning("log stream ended: Redis is unavailable", job_id=job["id"])

    async def _follow(self, job: Job, progress: _Progress) -> AsyncGenerator[bytes, None]:
        async with self._fanout.subscribe(str(job["id"])) as inbox:
            async for chunk in self._history(str(job["id"]), progress):
                yield chunk
            if progress.final is None and JobStatus(job["status"]).is_terminal:
                progress.final = job  # its terminal status came before ``after``
            if progress.final is None:
                async for chunk in self._live(inbox, progress):
                    yield chunk
        if progress.final is not None:
            yield encode_event("end", orjson.dumps(self._show_job(progress.final)).decode())

    async def _history(self, job_id: str, progress: _Progress) -> AsyncIterator[bytes]:
        while progress.final is None:
            page = await self._events.read_after(job_id, progress.last, HISTORY_PAGE)
            chunk = b"".join(self._encode(page, progress))
            if chunk:
                yield chunk
            if len(page) < HISTORY_PAGE:
                return

    async def _live(self, inbox: Subscription, progress: _Progress) -> AsyncIterator[bytes]:
        while progress.final is None:
            batch = await inbox.receive(self._heartbeat_s)
            if batch is None:
                if self._fanout.stopping:
                    yield SHUTTING_DOWN
                return  # dropped (too slow, or the server stops): the client resumes later
            chunk = b"".join(self._encode(batch, progress)) if batch else HEARTBEAT
            if chunk:
                yield chunk

    def _encode(self, entries: Iterable[Entry], progress: _Progress) -> Iterator[bytes]:
        """The new entries as SSE events, up to and including the job's terminal status."""
        for entry_id, fields in entries:
            if progress.final is not None:
                return
            if not progress.is_new(entry_id):
                continue
            rendered = render_entry(entry_id, fields)
            data = rendered["data"]
            if rendered["event"] == "status":
                data = self._show_job(data)
                if JobStatus(data["status"]).is_terminal:
                    progress.final = data
            progress.last = entry_id
            yield encode_event(rendered["event"], orjson.dumps(data).decode(), entry_id)
