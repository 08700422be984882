"""The one shared reader of a process and its fan-out to the clients following job logs.

A single blocking `XREAD` covers every job event stream that has a live client, and each entry goes
to the bounded inbox of every client of that job. However many clients follow logs, the process
holds one Redis connection for them (plus short calls on the shared pool). A client whose inbox
overflows is dropped rather than slowing the others; it reconnects with `Last-Event-ID` and loses
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Sequence

import structlog

from raibid_api.storage.event_store import Entry, EventReader, EventStore

_log = structlog.get_logger("raibid_api.logs")

INBOX_CAPACITY = 10_000
"""Entries a client may fall behind the reader before it is dropped."""
_BLOCK_MS = 5_000  # the latest a new stream is picked up when CLIENT UNBLOCK is not allowed
_READ_COUNT = 1_000  # entries per stream per read
_RETRY_S = 1.0  # pause after a failed read (Redis away), so the loop does not spin
_NUDGES = 20  # tries to wake a read that is not blocked yet (its command still on the way)
_NUDGE_S = 0.005


def entry_key(entry_id: str) -> tuple[int, int]:
    """The order of stream entry ids: ``<ms>-<seq>`` compared as numbers."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    """One client's bounded inbox of the live entries of one job."""

    def __init__(self, job_id: str, capacity: int) -> None:
        self.job_id = job_id
        self._capacity = capacity
        self._inbox: deque[Entry] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the fan-out dropped this client (it overflowed, or the server stops)."""
        return self._closed

    def offer(self, entries: Sequence[Entry]) -> bool:
        """Queue ``entries``; False, queueing nothing, when they do not fit."""
        if len(self._inbox) + len(entries) > self._capacity:
            return False
        self._inbox.extend(entries)
        self._ready.set()
        return True

    def close(self) -> None:
        """End the subscription: `receive` answers None from now on, even with entries queued."""
        self._closed = True
        self._inbox.clear()
        self._ready.set()

    async def receive(self, wait_s: float) -> list[Entry] | None:
        """Every entry queued so far, oldest first: waits up to ``wait_s`` seconds for one.

        Returns:
            The entries; [] when none came in time; None once the subscription is closed.
        """
        if not self._inbox and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait_s)
        if self._closed:
            return None
        batch = list(self._inbox)
        self._inbox.clear()
        self._ready.clear()
        return batch


class LogFanout:
    """The shared reader: watches the streams of jobs with subscribers, fills their inboxes.

    Each watched stream has one cursor, the id of the last entry the reader dispatched. A new
    stream's cursor is its newest entry when it is first watched, so a subscriber that reads the
    history *after* `subscribe` returns misses nothing: older entries are in the history, newer
    ones reach its inbox (an entry in both is dropped by the subscriber, which knows its last id).
    """

    def __init__(
        self,
        events: EventStore,
        reader: EventReader,
        *,
        capacity: int = INBOX_CAPACITY,
        block_ms: int = _BLOCK_MS,
    ) -> None:
        self._events = events
        self._reader = reader
        self._capacity = capacity
        self._block_ms = block_ms
        self._subscribers: dict[str, set[Subscription]] = {}
        self._cursors: dict[str, str] = {}
        self._reading: frozenset[str] | None = None  # the jobs of the read in progress
        self._watching = asyncio.Event()  # set when a stream is added
        self._stopping = False

    @property
    def watched_jobs(self) -> frozenset[str]:
        """The jobs whose streams the reader follows now."""
        return frozenset(self._cursors)

    def subscriber_count(self) -> int:
        """How many clients are subscribed, over all jobs."""
        return sum(len(subs) for subs in self._subscribers.values())

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        """A subscription to the live entries of ``job_id``, dropped when the block exits.

        Entries appended after this returns reach the inbox; older ones are the caller's to read
        from the history.
        """
        subscription = Subscription(job_id, self._capacity)
        if self._stopping:  # the server stops: the stream ends after its history
            subscription.close()
        self._subscribers.setdefault(job_id, set()).add(subscription)
        try:
            await self._watch(job_id)
            yield subscription
        finally:
            self._unsubscribe(subscription)

    async def _watch(self, job_id: str) -> None:
        if job_id in self._cursors:
            return
        newest = await self._events.last_id(job_id)
        if job_id in self._subscribers:  # its subscriber may have gone while we asked
            self._cursors.setdefault(job_id, newest)
            self._watching.set()
            await self._wake_reader()

    def _unsubscribe(self, subscription: Subscription) -> None:
        # synchronous: it runs in the `finally` of a cancelled response, where awaiting is unsafe
        subscribers = self._subscribers.get(subscription.job_id)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.job_id]
            self._cursors.pop(subscription.job_id, None)

    async def _wake_reader(self) -> None:
        """Wake the read in progress when it leaves out a watched stream."""
        for _ in range(_NUDGES):
            if self._reading is None or self._reading >= self._cursors.keys():
                return
            try:
                if await self._reader.interrupt():
                    return
            except Exception:  # a server that refuses CLIENT UNBLOCK: the block timeout will do
                _log.warning("cannot wake the log reader", exc_info=True)
                return
            # the read's command may still be on its way to the server: let it arrive
            await asyncio.sleep(_NUDGE_S)

    async def run(self) -> None:
        """Read and dispatch until cancelled; then close every subscription and the reader."""
        try:
            while True:
                await self._step()
        finally:
            self.close_all()
            await self._reader.aclose()

    @property
    def stopping(self) -> bool:
        """Whether `close_all` ended every subscription (the server stops)."""
        return self._stopping

    def close_all(self) -> None:
        """End every subscription now and refuse new ones (the server stops).

        Their clients resume on another replica, after the `retry` hint their stream ends with.
        """
        self._stopping = True
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                subscription.close()

    async def _step(self) -> None:
        if not self._cursors:
            self._watching.clear()
            await self._watching.wait()
            return
        batches = await self._read(dict(self._cursors))
        if batches is None:
            await asyncio.sleep(_RETRY_S)
            return
        for job_id, entries in batches:
            self._dispatch(job_id, entries)

    async def _read(self, cursors: dict[str, str]) -> list[tuple[str, list[Entry]]] | None:
        self._reading = frozenset(cursors)
        try:
            return await self._reader.read(cursors, self._block_ms, _READ_COUNT)
        except Exception:  # Redis away: keep the clients (they get heartbeats) and try again
            _log.warning("log reader failed; retrying", exc_info=True)
            return None
        finally:
            self._reading = None

    def _dispatch(self, job_id: str, entries: list[Entry]) -> None:
        cursor = self._cursors.get(job_id)
        if cursor is None or not entries:
            return  # nobody follows this job any more
        newest = entries[-1][0]
        if entry_key(newest) > entry_key(cursor):
            self._cursors[job_id] = newest
        for subscription in list(self._subscribers.get(job_id, ())):
            if not subscription.offer(entries):
                _log.info("slow log client dropped", job_id=job_id, capacity=self._capacity)
                subscription.close()
                self._unsubscribe(subscription)
