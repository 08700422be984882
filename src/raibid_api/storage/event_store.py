"""Event streams: one per job, and one of every job's status changes.

A job's (``P:job:<id>:events``) holds its log lines and status changes, in order; every job's
creation and status changes go to ``P:events:status`` too. Readers name a stream by its
*channel*: a job id, or `STATUS_CHANNEL` (which is no job id).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from redis.asyncio import Redis

from raibid_api.storage.connection import shielded, shielded_blocking
from raibid_api.storage.keys import Keys

Entry = tuple[str, dict[str, str]]
_PAGE = 1000
_LAST_POSSIBLE_ID = f"{2**64 - 1}-{2**64 - 1}"
_CLOSE_WAIT_S = 5.0  # a woken read ends at once; this bounds a read whose wake was lost
STATUS_CHANNEL = "status"
"""The channel of the stream of every job's status changes."""
NO_ENTRY = "0-0"
"""The id before every entry: a cursor at the start of a stream."""


def stream_key(keys: Keys, channel: str) -> str:
    """The stream a channel names."""
    return keys.status_events if channel == STATUS_CHANNEL else keys.events(channel)


class EventStore:
    """Reads of job event streams."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    @shielded
    async def read_after(self, job_id: str, after: str | None, count: int) -> list[Entry]:
        """Up to ``count`` entries after the entry id ``after`` (from the start when None)."""
        if after == _LAST_POSSIBLE_ID:
            return []  # Redis refuses an exclusive range that starts past every id
        start = f"({after}" if after else "-"
        reply = await self._redis.xrange(stream_key(self._keys, job_id), start, "+", count=count)
        return cast("list[Entry]", reply)

    @shielded
    async def resume(
        self, channel: str, after: str, count: int
    ) -> tuple[Entry | None, list[Entry]]:
        """The entry ``after`` if it is still kept, and up to ``count`` entries after it.

        An entry no longer kept was trimmed (or dropped from a big log's middle): the entries
        between it and the first one returned are lost to the reader.
        """
        if after == NO_ENTRY:
            return None, await self.read_after(channel, None, count)
        reply = cast(
            "list[Entry]",
            await self._redis.xrange(stream_key(self._keys, channel), after, "+", count=count + 1),
        )
        if reply and reply[0][0] == after:
            return reply[0], reply[1:]
        return None, reply[:count]

    @shielded
    async def read_last(self, job_id: str, count: int) -> list[Entry]:
        """The last ``count`` entries, oldest first."""
        reply = await self._redis.xrevrange(self._keys.events(job_id), "+", "-", count=count)
        return list(reversed(cast("list[Entry]", reply)))

    @shielded
    async def last_id(self, job_id: str) -> str:
        """Id of the newest entry, or ``0-0`` when the stream has none (or does not exist)."""
        key = stream_key(self._keys, job_id)
        reply = cast("list[Entry]", await self._redis.xrevrange(key, count=1))
        return reply[0][0] if reply else NO_ENTRY

    async def read_all(self, job_id: str) -> AsyncIterator[Entry]:
        """Every entry, oldest first, read a page at a time."""
        after = None
        while True:
            page = await self.read_after(job_id, after, _PAGE)
            for entry in page:
                yield entry
            if len(page) < _PAGE:
                return
            after = page[-1][0]


class EventReader:
    """One dedicated connection that blocks in `XREAD` over many job event streams at once.

    Another connection can wake a blocked read with `CLIENT UNBLOCK`, so a stream added while the
    reader waits is picked up at once instead of when the block times out.
    """

    def __init__(self, blocking: Redis, control: Redis, keys: Keys) -> None:
        """A reader on its own connection.

        Args:
            blocking: a client without socket timeout; the reader owns it and closes it.
            control: the shared client, through which `interrupt` wakes a blocked read.
            keys: the key names.
        """
        self._owner = blocking
        self._connection = blocking.client()  # one connection: the one CLIENT UNBLOCK names
        self._control = control
        self._keys = keys
        self._client_id: int | None = None
        self._in_flight: asyncio.Future[list[tuple[str, list[Entry]]]] | None = None

    async def read(
        self, cursors: Mapping[str, str], block_ms: int, count: int
    ) -> list[tuple[str, list[Entry]]]:
        """Entries after each job's cursor, as ``(job id, entries)``; [] when ``block_ms`` passed.

        Args:
            cursors: job id -> id of the last entry already read from its stream.
            block_ms: how long to wait for a first entry.
            count: at most this many entries per stream.
        """
        # the read outlives a cancelled caller (see `shielded`); kept so `aclose` can wait for it
        task = asyncio.ensure_future(self._read(dict(cursors), block_ms, count))
        self._in_flight = task
        return await asyncio.shield(task)

    @shielded_blocking
    async def _read(
        self, cursors: dict[str, str], block_ms: int, count: int
    ) -> list[tuple[str, list[Entry]]]:
        # asked before every read: a reconnect (after Redis came back) gives the connection a new id
        self._client_id = await self._connection.client_id()
        streams: dict[Any, Any] = {
            stream_key(self._keys, job): cursor for job, cursor in cursors.items()
        }
        jobs = {stream_key(self._keys, job_id): job_id for job_id in cursors}
        reply: Any = await self._connection.xread(streams, count=count, block=block_ms)
        # redis-py answers `[[key, entries], ...]`, or `{key: entries}` with its unified replies
        items = reply.items() if isinstance(reply, dict) else reply or []
        return [(jobs[key], cast("list[Entry]", entries)) for key, entries in items]

    @shielded
    async def interrupt(self) -> bool:
        """End the blocked read at once, as if it timed out; False when no read was blocked."""
        if self._client_id is None:
            return False
        return bool(await self._control.client_unblock(self._client_id))

    async def aclose(self) -> None:
        """Wake the read in progress, let it end, and close the connection."""
        if self._in_flight is not None and not self._in_flight.done():
            with contextlib.suppress(Exception):
                await self.interrupt()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._in_flight), _CLOSE_WAIT_S)
        await self._connection.aclose()
        await self._owner.aclose()
