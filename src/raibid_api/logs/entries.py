"""What a job's event-stream entries look like to clients: log lines and status changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from raibid_api.storage.codec import decode_job


def render_entry(entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """An entry as `{id, event, data}`: a log line, or the job as it became."""
    if fields.get("type") == "log":
        data: dict[str, Any] = {
            "t": fields.get("t"),
            "stream": fields.get("stream", "stdout"),
            "line": fields.get("line", ""),
        }
        return {"id": entry_id, "event": "log", "data": data}
    return {"id": entry_id, "event": "status", "data": decode_job(fields)}


def log_text(entries: Iterable[tuple[str, Mapping[str, str]]]) -> str:
    """The log lines alone, one per line."""
    return "".join(f"{f.get('line', '')}\n" for _, f in entries if f.get("type") == "log")
