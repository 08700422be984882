"""The delivery journal: what the intake decided for every delivery, and paging through it.

Every delivery, accepted or not, becomes one `JournalEntry`. Recording never fails or delays a
delivery: entries are queued and written in batches (`DeliveryJournal.run`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from enum import StrEnum
from typing import Protocol

import orjson
import structlog

from raibid_api.domain.jobs import Clock
from raibid_api.errors import InvalidCursorError, ServiceUnavailableError
from raibid_api.observability import metrics

_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
_MAX_ID_PART = 2**64 - 1
# A page scans at most this many entries, so a filter matching little cannot make one request
# read the whole journal; the page then ends early with a cursor to go on from.
SCAN_BUDGET = 5_000
MAX_PENDING = 10_000
ENTRY_FIELD = "entry"  # the stream field holding an entry's JSON
LINGER_S = 0.05
_log = structlog.get_logger("raibid_api.webhooks")


class Decision(StrEnum):
    """What the intake did with a delivery."""

    CREATED = "created"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    FILTERED = "filtered"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """One delivery in the journal.

    Attributes:
        received_at: when it arrived (RFC 3339 UTC).
        forge: the route it came in on.
        event: its event type header, when readable.
        delivery_id: the forge's delivery id (or the synthetic one), when readable.
        signature: ``valid``, ``unsigned`` (let in by ``allow_unsigned``) or ``mismatch``;
            ``None`` for a delivery refused for any other reason (the verdict is not kept).
        decision: what the intake did.
        reason: the stable code of an ignored, filtered or rejected delivery (an ``ignored``
            reason or an error code), or the kind of duplicate.
        detail: a short human explanation.
        job_id: the job made or found, else ``None``.
        repo: ``owner/name`` of an authenticated delivery, else ``None``.
        source: the client address it came from.
        duration_ms: the time spent handling it.
        spooled: it was spooled to disk while Redis was away, and this is its replay.
    """

    received_at: str
    forge: str
    event: str | None = None
    delivery_id: str | None = None
    signature: str | None = None
    decision: Decision
    reason: str | None = None
    detail: str | None = None
    job_id: str | None = None
    repo: str | None = None
    source: str | None = None
    duration_ms: float = 0.0
    spooled: bool = False

    def to_fields(self) -> dict[str, str]:
        """The stream entry's fields: the entry as one JSON text (one argument to send, not 26)."""
        return {
            ENTRY_FIELD: orjson.dumps({key: getattr(self, key) for key in _ENTRY_FIELDS}).decode()
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> JournalEntry:
        """The entry a stream entry holds (fields this version does not know are dropped).

        Entries are one JSON field; entries an earlier version wrote, while they are kept,
        have a stream field per entry field.
        """
        if ENTRY_FIELD in fields:
            data = orjson.loads(fields[ENTRY_FIELD])
            known = {key: data[key] for key in _ENTRY_FIELDS if key in data}
            known["decision"] = Decision(known.get("decision", Decision.REJECTED))
            return cls(**known)

        def text(key: str) -> str | None:
            return fields.get(key) or None

        return cls(
            received_at=fields.get("received_at", ""),
            forge=fields.get("forge", ""),
            event=text("event"),
            delivery_id=text("delivery_id"),
            signature=text("signature"),
            decision=Decision(fields.get("decision", Decision.REJECTED)),
            reason=text("reason"),
            detail=text("detail"),
            job_id=text("job_id"),
            repo=text("repo"),
            source=text("source"),
            duration_ms=float(fields.get("duration_ms") or 0),
            spooled=fields.get("spooled") == "1",
        )

    def to_json(self, entry_id: str) -> dict[str, object]:
        """The entry as ``GET /webhook/deliveries`` shows it."""
        shown: dict[str, object] = {"id": entry_id}
        shown |= asdict(self)
        shown["signature_valid"] = None if self.signature is None else self.signature == "valid"
        return shown


_ENTRY_FIELDS = tuple(f.name for f in dataclass_fields(JournalEntry))


@dataclass(frozen=True, slots=True)
class JournalQuery:
    """Which entries a listing wants; every field set narrows it."""

    forge: str | None = None
    decision: Decision | None = None
    repo: str | None = None

    def matches(self, entry: JournalEntry) -> bool:
        """Whether ``entry`` passes every filter."""
        return (
            (self.forge is None or entry.forge == self.forge)
            and (self.decision is None or entry.decision == self.decision)
            and (self.repo is None or entry.repo == self.repo)
        )


@dataclass(frozen=True, slots=True)
class JournalPage:
    """Entries newest first, and the cursor to the older ones (``None`` at the end)."""

    entries: list[tuple[str, JournalEntry]]
    next_cursor: str | None


def parse_cursor(cursor: str) -> str | None:
    """The stream id a cursor names; ``None`` for ``0-0``, before which nothing can be.

    Raises:
        InvalidCursorError: not ``<ms>-<seq>`` with both parts fitting in 64 bits.
    """
    match = _STREAM_ID.fullmatch(cursor)
    if match is None or max(int(match[1]), int(match[2])) > _MAX_ID_PART:
        raise InvalidCursorError("a deliveries cursor is the id of a journal entry: <ms>-<seq>")
    return None if int(match[1]) == int(match[2]) == 0 else cursor


class JournalStore(Protocol):
    """Where journal entries are kept (`raibid_api.storage.delivery_journal`)."""

    def append_many(self, entries: Sequence[Mapping[str, str]], now_ms: int) -> Awaitable[None]:
        """Add entries, in order."""
        ...

    def read_before(
        self, before: str | None, count: int
    ) -> Awaitable[list[tuple[str, dict[str, str]]]]:
        """Up to ``count`` entries older than ``before`` (or the newest), newest first."""
        ...


class DeliveryJournal:
    """Records deliveries and lists them.

    Recording only queues the entry: `run` writes whatever is queued in one round trip, so under
    load many deliveries share one write and none waits for its own. A listing writes the queue
    first, so a client always finds the deliveries it just made. While Redis is away the queue
    keeps the newest `MAX_PENDING` entries and writes them when it answers again.
    """

    def __init__(self, store: JournalStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._pending: list[dict[str, str]] = []
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()

    def record(self, entry: JournalEntry) -> None:
        """Queue ``entry`` for the journal (and count it)."""
        metrics.webhook_delivery(entry.forge, entry.event, entry.decision)
        self._pending.append(entry.to_fields())
        if len(self._pending) > MAX_PENDING:
            del self._pending[0]
            _log.warning("webhook journal queue full; the oldest entry is dropped")
        self._wakeup.set()

    async def flush(self) -> None:
        """Write every queued entry; a Redis that does not answer keeps them queued."""
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                await self._store.append_many(batch, self._clock.now_ms())
            except ServiceUnavailableError as exc:
                self._pending = (batch + self._pending)[-MAX_PENDING:]
                _log.warning("webhook deliveries not journaled yet", reason=exc.message)

    async def run(self) -> None:
        """Write queued entries as they come, until cancelled (then write what is left).

        A write waits `LINGER_S` after the first entry it finds, so that under load it carries
        the deliveries of that stretch in one round trip rather than one or two each.
        """
        try:
            while True:
                await self._wakeup.wait()
                await asyncio.sleep(LINGER_S)
                self._wakeup.clear()
                await self.flush()
        finally:
            await self.flush()

    async def page(self, query: JournalQuery, cursor: str | None, limit: int) -> JournalPage:
        """Up to ``limit`` matching entries, newest first, older than ``cursor``.

        A page may hold fewer than ``limit`` entries and still have a ``next_cursor`` when the
        filters matched little of the `SCAN_BUDGET` entries it read.

        Raises:
            InvalidCursorError: ``cursor`` is not an entry id.
        """
        before = parse_cursor(cursor) if cursor is not None else None
        if cursor is not None and before is None:
            return JournalPage([], None)
        await self.flush()
        found: list[tuple[str, JournalEntry]] = []
        scanned = 0
        batch = max(limit, 100)
        while scanned < SCAN_BUDGET:
            rows = await self._store.read_before(before, batch)
            scanned += len(rows)
            for entry_id, fields in rows:
                before = entry_id
                entry = JournalEntry.from_fields(fields)
                if query.matches(entry):
                    found.append((entry_id, entry))
                    if len(found) == limit:
                        return JournalPage(found, entry_id)
            if len(rows) < batch:
                return JournalPage(found, None)
        return JournalPage(found, before)
