"""The local disk spool: deliveries acknowledged while Redis was away, kept until replayed.

Each delivery is one JSON file, made durable before the forge gets its 2xx: written under a
temporary name, fsynced, renamed into place, and the directory fsynced, so after a crash a file
is either whole or absent. Files are named by arrival time, so replay keeps the forge's order.
The spool is per process (local disk); exactly-once across a crash between a replayed job and
the file's removal comes from the delivery key, not from here.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

from raibid_api.webhooks.events import WebhookEvent

SUFFIX = ".json"
_TEMP_PREFIX = ".tmp-"
_QUARANTINE_SUFFIX = ".bad"
_log = structlog.get_logger("raibid_api.webhooks")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpooledDelivery:
    """A delivery that was authenticated and parsed, but not yet stored in Redis."""

    forge: str
    delivery_id: str
    event_type: str
    signature: str
    source: str
    received_ms: int
    event: WebhookEvent

    def to_json(self) -> bytes:
        """The file's content."""
        data = asdict(self)
        paths = self.event.changed_paths
        data["event"]["changed_paths"] = sorted(paths) if paths is not None else None
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, content: bytes) -> SpooledDelivery:
        """Read a file's content back.

        Raises:
            ValueError: the content is not a spooled delivery.
        """
        try:
            data: dict[str, Any] = orjson.loads(content)
            event: dict[str, Any] = dict(data.pop("event"))
            paths = event.get("changed_paths")
            event["changed_paths"] = frozenset(paths) if paths is not None else None
            return cls(**data, event=WebhookEvent(**event))
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a spooled delivery: {exc!r}") from None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DeliverySpool:
    """One directory of spooled deliveries, bounded to ``max_bytes``. Blocking: run in a thread."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._size = 0
        self._count = 0

    def open(self) -> None:
        """Create the directory, drop unfinished temporary files, and count what is spooled."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob(f"{_TEMP_PREFIX}*"):
            # never renamed into place, so never acknowledged: not ours to keep
            leftover.unlink(missing_ok=True)
        pending = self.pending()
        with self._lock:
            self._size = sum(path.stat().st_size for path in pending)
            self._count = len(pending)

    def write(self, delivery: SpooledDelivery) -> bool:
        """Store ``delivery`` durably; ``False`` when it does not fit under ``max_bytes``.

        Raises:
            OSError: the disk refused the write.
        """
        content = delivery.to_json()
        with self._lock:
            if self._size + len(content) > self.max_bytes:
                return False
            self._size += len(content)
        name = f"{delivery.received_ms:015d}-{delivery.forge}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        temp = self.directory / f"{_TEMP_PREFIX}{name}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, content)
                os.fsync(fd)
            finally:
                os.close(fd)
            temp.rename(self.directory / name)
            _fsync_directory(self.directory)
        except OSError:
            temp.unlink(missing_ok=True)
            with self._lock:
                self._size -= len(content)
            raise
        with self._lock:
            self._count += 1
        return True

    @property
    def depth(self) -> int:
        """Deliveries spooled and not yet replayed or set aside (counted, no directory listing)."""
        return self._count

    def pending(self) -> list[Path]:
        """Spooled files, oldest first."""
        return sorted(self.directory.glob(f"[0-9]*{SUFFIX}"))

    def read(self, path: Path) -> SpooledDelivery | None:
        """The delivery in ``path``; ``None`` (and the file set aside) when it is unreadable."""
        try:
            return SpooledDelivery.from_json(path.read_bytes())
        except ValueError:
            self.set_aside(path, "unreadable")
            return None

    def remove(self, path: Path) -> None:
        """Forget a replayed delivery."""
        size = path.stat().st_size
        path.unlink()
        _fsync_directory(self.directory)
        with self._lock:
            self._size -= size
            self._count -= 1

    def set_aside(self, path: Path, why: str) -> None:
        """Move a file that cannot be replayed out of the way (kept for an operator)."""
        _log.error("spooled webhook delivery set aside", file=path.name, reason=why)
        size = path.stat().st_size
        path.rename(path.with_name(path.name + _QUARANTINE_SUFFIX))
        with self._lock:
            self._size -= size
            self._count -= 1
