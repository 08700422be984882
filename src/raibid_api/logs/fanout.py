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
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar, cast

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
_T = TypeVar("_T")
WAKE_SLICE = 50
"""Subscribers woken at once; the reader lets them run before it wakes the next ones."""


def entry_key(entry_id: str) -> tuple[int, int]:
    """The order of stream entry ids: ``<ms>-<seq>`` compared as numbers."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Batch:
    """Entries the reader got from one stream in one read, shared by every client of that stream.

    What a client sends for them is worked out once per batch and kept (`shared`): a thousand
    clients of one job cost one rendering and one encoding of each entry, not a thousand.
    """

    __slots__ = ("_shared", "channel", "entries", "first", "last")

    def __init__(self, channel: str, entries: list[Entry]) -> None:
        self.channel = channel
        self.entries = entries
        self.first = entry_key(entries[0][0])
        self.last = entry_key(entries[-1][0])
        self._shared: dict[str, Any] = {}

    def shared(self, view: str, make: Callable[[Batch], _T]) -> _T:
        """``make(self)``, computed by the first client that asks for ``view`` and then kept."""
        if view not in self._shared:
            self._shared[view] = make(self)
        return cast("_T", self._shared[view])


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscription:
    """One client's bounded inbox of the live entries of some channels (streams)."""

    def __init__(
        self,
        channels: Sequence[str],
        capacity: int,
        accept: Callable[[Entry], bool] | None = None,
    ) -> None:
        """An inbox for ``channels``; ``accept`` keeps only the entries it approves."""
        self.channels = tuple(dict.fromkeys(channels))
        self._capacity = capacity
        self._accept = accept
        self._inbox: deque[Batch] = deque()
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None  # the receive waiting for a batch
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the fan-out dropped this client (it overflowed, or the server stops)."""
        return self._closed

    def offer(self, batch: Batch) -> bool:
        """Queue ``batch``; False, queueing nothing, when it does not fit."""
        if self._accept is not None:
            kept = [entry for entry in batch.entries if self._accept(entry)]
            if not kept:
                return True
            if len(kept) < len(batch.entries):
                batch = Batch(batch.channel, kept)
        if self._size + len(batch.entries) > self._capacity:
            return False
        self._inbox.append(batch)
        self._size += len(batch.entries)
        self._wake()
        return True

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        """End the subscription: `receive` answers None from now on, even with entries queued."""
        self._closed = True
        self._inbox.clear()
        self._size = 0
        self._wake()

    async def receive(self, wait_s: float) -> list[Batch] | None:
        """Every batch queued so far, oldest first: waits up to ``wait_s`` seconds for one.

        A bare future and a timer, not `asyncio.wait_for` (which makes a task per call): a
        thousand clients of one job wait here for every batch.

        Returns:
            The batches; [] when none came in time; None once the subscription is closed.
        """
        if not self._inbox and not self._closed:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(wait_s, _settle, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self._closed:
            return None
        batches = list(self._inbox)
        self._inbox.clear()
        self._size = 0
        return batches

    async def receive_entries(self, wait_s: float) -> list[Entry] | None:
        """As `receive`, the entries alone."""
        batches = await self.receive(wait_s)
        if batches is None:
            return None
        return [entry for batch in batches for entry in batch.entries]


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
        pace_s: float = 0.0,
    ) -> None:
        self._events = events
        self._reader = reader
        self._capacity = capacity
        self._block_ms = block_ms
        self._pace_s = pace_s
        self._subscribers: dict[str, set[Subscription]] = {}
        self._cursors: dict[str, str] = {}
        self._reading: frozenset[str] | None = None  # the jobs of the read in progress
        self._watching = asyncio.Event()  # set when a stream is added
        self._asking: dict[str, asyncio.Future[str]] = {}  # newest entry ids being asked
        self._stopping = False

    @property
    def watched_jobs(self) -> frozenset[str]:
        """The jobs whose streams the reader follows now."""
        return frozenset(self._cursors)

    def subscriber_count(self) -> int:
        """How many clients are subscribed, over all jobs."""
        return len(set().union(*self._subscribers.values()))

    @contextlib.asynccontextmanager
    async def subscribe(
        self, *channels: str, accept: Callable[[Entry], bool] | None = None
    ) -> AsyncIterator[Subscription]:
        """A subscription to the live entries of ``channels``, dropped when the block exits.

        A channel is a job id or `STATUS_CHANNEL`. Entries appended after this returns reach the
        inbox (those ``accept`` approves, when given); older ones are the caller's to read from
        the history.
        """
        subscription = Subscription(channels, self._capacity, accept)
        if self._stopping:  # the server stops: the stream ends after its history
            subscription.close()
        for channel in subscription.channels:
            self._subscribers.setdefault(channel, set()).add(subscription)
        try:
            for channel in subscription.channels:
                await self._watch(channel)
            yield subscription
        finally:
            self._unsubscribe(subscription)

    async def _watch(self, channel: str) -> None:
        if channel in self._cursors:
            return
        # clients arriving together share one question to Redis, not one connection each
        asking = self._asking.get(channel)
        if asking is None:
            asking = self._asking[channel] = asyncio.ensure_future(self._events.last_id(channel))
            asking.add_done_callback(lambda _: self._asking.pop(channel, None))
        newest = await asyncio.shield(asking)
        if channel in self._subscribers:  # its subscriber may have gone while we asked
            self._cursors.setdefault(channel, newest)
            self._watching.set()
            await self._wake_reader()

    def _unsubscribe(self, subscription: Subscription) -> None:
        # synchronous: it runs in the `finally` of a cancelled response, where awaiting is unsafe
        for channel in subscription.channels:
            subscribers = self._subscribers.get(channel)
            if subscribers is None:
                continue
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[channel]
                self._cursors.pop(channel, None)

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

    def cursor(self, channel: str) -> str | None:
        """The id of the last entry of ``channel`` dispatched (None: the channel is not watched).

        A subscriber of ``channel`` gets every entry after it in its inbox.
        """
        return self._cursors.get(channel)

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
        for channel, entries in batches:
            await self._dispatch(channel, entries)
        if self._pace_s:
            await asyncio.sleep(self._pace_s)  # let entries gather: fewer, bigger wake-ups

    async def _read(self, cursors: dict[str, str]) -> list[tuple[str, list[Entry]]] | None:
        self._reading = frozenset(cursors)
        try:
            return await self._reader.read(cursors, self._block_ms, _READ_COUNT)
        except Exception:  # Redis away: keep the clients (they get heartbeats) and try again
            _log.warning("log reader failed; retrying", exc_info=True)
            return None
        finally:
            self._reading = None

    async def _dispatch(self, channel: str, entries: list[Entry]) -> None:
        """Hand ``entries`` to every subscriber of ``channel``, a slice of them at a time.

        Each woken subscriber runs before the next slice is woken, so whatever else the process
        does (an agent's log POST) waits for one slice of clients at most, not for all of them.
        """
        cursor = self._cursors.get(channel)
        if cursor is None or not entries:
            return  # nobody follows this stream any more
        batch = Batch(channel, entries)
        if batch.last > entry_key(cursor):
            self._cursors[channel] = entries[-1][0]
        subscribers = list(self._subscribers.get(channel, ()))
        for start in range(0, len(subscribers), WAKE_SLICE):
            if start:
                await asyncio.sleep(0)  # let the slice just woken (and anyone else) run
            for subscription in subscribers[start : start + WAKE_SLICE]:
                if subscription.closed:
                    continue  # gone while an earlier slice ran
                if not subscription.offer(batch):
                    _log.info("slow log client dropped", channel=channel, capacity=self._capacity)
                    subscription.close()
                    self._unsubscribe(subscription)
