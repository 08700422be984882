"""What event-stream entries look like to clients: log lines, status changes, and gaps.

A log line carries ``n``, its number in the job's log. Big logs lose lines from their middle
(``logs.max_lines``): where the numbers of two neighbouring lines jump, the lines between them were
dropped, and readers show a gap there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from raibid_api.storage.codec import decode_job

Entry = tuple[str, Mapping[str, str]]


def line_number(fields: Mapping[str, str]) -> int | None:
    """The number ``n`` of a log line (None: a status entry, or a line from before numbers)."""
    if fields.get("type") != "log":
        return None
    n = fields.get("n")
    return int(n) if n else None


def dropped_between(before: int | None, after: int | None) -> int:
    """How many lines were dropped between line numbers ``before`` and ``after`` (0: none)."""
    if before is None or after is None:
        return 0
    return max(0, after - before - 1)


def render_entry(entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """An entry as `{id, event, data}`: a log line, or the job as it became."""
    if fields.get("type") == "log":
        data: dict[str, Any] = {
            "t": fields.get("t"),
            "stream": fields.get("stream", "stdout"),
            "line": fields.get("line", ""),
        }
        n = line_number(fields)
        if n is not None:
            data["n"] = n
        return {"id": entry_id, "event": "log", "data": data}
    return {"id": entry_id, "event": "status", "data": decode_job(fields)}


def gap_entry(dropped: int | None) -> dict[str, Any]:
    """The JSON form's mark where lines are missing."""
    return {"id": None, "event": "gap", "data": {"dropped": dropped}}


def with_gaps(entries: Iterable[Entry]) -> Iterator[dict[str, Any]]:
    """The entries rendered, with a gap entry wherever line numbers jump."""
    last_n: int | None = None
    for entry_id, fields in entries:
        n = line_number(fields)
        if dropped := dropped_between(last_n, n):
            yield gap_entry(dropped)
        if n is not None:
            last_n = n
        yield render_entry(entry_id, fields)


def gap_line(dropped: int | None) -> str:
    """The text form's mark where lines are missing."""
    return f"[… {dropped} lines dropped …]" if dropped is not None else "[… lines dropped …]"


def log_text(entries: Iterable[Entry]) -> str:
    """The log lines alone, one per line, with a mark where lines were dropped."""
    out: list[str] = []
    for rendered in with_gaps(entries):
        if rendered["event"] == "gap":
            out.append(gap_line(rendered["data"]["dropped"]) + "\n")
        elif rendered["event"] == "log":
            out.append(f"{rendered['data']['line']}\n")
    return "".join(out)
