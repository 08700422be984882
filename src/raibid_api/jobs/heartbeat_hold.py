"""The heartbeat's long poll: an agent's heartbeat held open until its job changes status.

A held heartbeat waits on the stream of every job's status changes (``P:events:status``), which gets
an entry on every transition, through the process's one shared stream reader (`LogFanout`), keeping
only its job's entries: a cancel reaches the agent as soon as any replica writes it, a waiting agent
costs no Redis connection, and the job's log lines (its own stream) never wake it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from raibid_api.storage.event_store import STATUS_CHANNEL, Entry

_GONE_CHECK_S = 1.0  # how soon a held heartbeat notices that its agent hung up


class EventInbox(Protocol):
    """The live entries of one job's event stream, as the shared reader hands them out."""

    async def receive_entries(self, wait_s: float) -> list[Entry] | None:
        """Entries so far; [] when none came within ``wait_s``; None once the inbox closed."""
        ...


class JobEvents(Protocol):
    """Subscriptions to the live entries of job event streams (`LogFanout` is one)."""

    def subscribe(
        self, *channels: str, accept: Callable[[Entry], bool] | None = None
    ) -> AbstractAsyncContextManager[EventInbox]:
        """The entries ``accept`` keeps of those appended to ``channels`` from now on."""
        ...


async def hold_until_status_change(
    events: JobEvents,
    job_id: str,
    wait: float,
    running: Callable[[], Awaitable[bool]],
    gone: Callable[[], Awaitable[bool]],
) -> None:
    """Return once the job's status changes, the caller left, or ``wait`` seconds passed.

    It subscribes before it asks whether the job still runs, so a change in between is in the
    inbox rather than missed.

    Args:
        events: the shared reader.
        job_id: the job.
        wait: the longest hold, in seconds.
        running: whether the job still runs (asked once, after subscribing).
        gone: whether the caller hung up.
    """
    deadline = time.monotonic() + wait

    def its_own(entry: Entry) -> bool:
        return entry[1].get("job_id") == job_id

    async with events.subscribe(STATUS_CHANNEL, accept=its_own) as inbox:
        if not await running():
            return
        checked = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            batch = await inbox.receive_entries(min(left, _GONE_CHECK_S))
            if batch is None or batch:
                return
            if time.monotonic() - checked >= _GONE_CHECK_S:
                if await gone():
                    return
                checked = time.monotonic()
