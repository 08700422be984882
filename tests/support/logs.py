"""The structlog events a test logged, as the `captured_logs` fixture holds them."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

LogEvent = MutableMapping[str, Any]


class LogEvents:
    """Every structlog event of the running test, as dicts in the order logged (a live view).

    Each event has its ``event`` text, its ``log_level`` and the bound and context variables.
    """

    def __init__(self, entries: list[LogEvent]) -> None:
        self._entries = entries

    def __iter__(self) -> Iterator[LogEvent]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return repr(self._entries)

    def named(self, event: str, level: str | None = None) -> list[LogEvent]:
        """The events whose text is ``event``, of ``level`` when given."""
        return [e for e in self._entries if e["event"] == event and level in (None, e["log_level"])]

    def warnings_about(self, event: str) -> list[LogEvent]:
        """The warnings whose text is ``event``."""
        return self.named(event, "warning")
