"""The heartbeat's long poll: an agent's heartbeat held open until its job changes status.

A held heartbeat waits on the job's event stream (``P:job:<id>:events``), which gets a ``status``
entry on every transition, through the process's one shared stream reader (`LogFanout`): a cancel
reaches the agent as soon as any replica writes it, and a waiting agent costs no Redis connection.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from raibid_api.storage.event_store import Entry

_GONE_CHECK_S = 1.0  # how soon a held heartbeat notices that its agent hung up


class EventInbox(Protocol):
    """The live entries of one job's event stream, as the shared reader hands them out."""

    async def receive(self, wait_s: float) -> list[Entry] | None:
        """Entries so far; [] when none came within ``wait_s``; None once the inbox closed."""
        ...


class JobEvents(Protocol):
    """Subscriptions to the live entries of job event streams (`LogFanout` is one)."""

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[EventInbox]:
        """The entries appended to ``job_id``'s stream from now on, until the block exits."""
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
    async with events.subscribe(job_id) as inbox:
        if not await running():
            return
        checked = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            batch = await inbox.receive(min(left, _GONE_CHECK_S))
            if batch is None or any(fields.get("type") == "status" for _, fields in batch):
                return
            if time.monotonic() - checked >= _GONE_CHECK_S:
                if await gone():
                    return
                checked = time.monotonic()
