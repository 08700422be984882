"""How the terminal client shows jobs: rich tables and colours on a terminal, plain text elsewhere.

Plain text is for scripts: one job per line, tab-separated, no header, no colour; `show` prints
``field<TAB>value`` lines. ``--json`` prints the API's JSON as it came.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from raibid_api.client.http import Job

STATUS_STYLES = {
    "pending": "yellow",
    "running": "cyan",
    "success": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}
LIST_COLUMNS = ("id", "status", "repo", "ref", "commit", "event", "created", "duration")
SHOW_FIELDS = (
    "id", "status", "repo", "event", "ref", "branch", "tag", "pull_request", "commit", "message",
    "author", "pusher", "created_at", "started_at", "finished_at", "duration", "exit_code",
    "attempt", "retry_of", "agent_id", "reason",
)  # fmt: skip


def where(job: Job) -> str:
    """The branch, tag or pull request a job builds."""
    if job.get("pull_request") is not None:
        return f"#{job['pull_request']} ({job.get('branch') or ''})"
    return str(job.get("branch") or job.get("tag") or job.get("ref") or "")


def duration(job: Job) -> str:
    """The job's duration as ``1m05s``, or '' while it has none."""
    seconds = job.get("duration")
    if not isinstance(seconds, int | float):
        return ""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def row(job: Job) -> list[str]:
    """The list columns of one job, as text."""
    return [
        str(job.get("id") or ""), str(job.get("status") or ""), str(job.get("repo") or ""),
        where(job), str(job.get("commit") or "")[:12], str(job.get("event") or ""),
        str(job.get("created_at") or ""), duration(job),
    ]  # fmt: skip


@dataclass
class Output:
    """Where results go, and in which form."""

    json_mode: bool = False
    stream: TextIO = sys.stdout

    @property
    def rich(self) -> bool:
        """Whether to draw tables and colours (a terminal, and no ``--json``)."""
        return not self.json_mode and self.stream.isatty()

    def _console(self) -> Console:
        return Console(file=self.stream, highlight=False)

    def _json(self, data: Any) -> None:
        self.stream.write(json.dumps(data, indent=2) + "\n")

    def jobs(self, jobs: Sequence[Job], total: int, page: dict[str, Any]) -> None:
        """A list of jobs."""
        if self.json_mode:
            self._json(page)
        elif self.rich:
            table = Table(*(name.upper() for name in LIST_COLUMNS), box=None, pad_edge=False)
            for job in jobs:
                cells = row(job)
                table.add_row(cells[0], status_text(cells[1]), *cells[2:])
            console = self._console()
            console.print(table)
            console.print(Text(f"{len(jobs)} of {total} jobs", style="dim"))
        else:
            for job in jobs:
                self.stream.write("\t".join(row(job)) + "\n")

    def job(self, job: Job) -> None:
        """One job, every field."""
        if self.json_mode:
            self._json(job)
        elif self.rich:
            table = Table(show_header=False, box=None, pad_edge=False)
            table.add_column(style="bold")
            table.add_column()
            for name in SHOW_FIELDS:
                value = job.get(name)
                if value is None:
                    continue
                cell = status_text(str(value)) if name == "status" else Text(str(value))
                table.add_row(name, cell)
            web = (job.get("links") or {}).get("web")
            if web:
                table.add_row("web", Text(str(web), style="underline"))
            self._console().print(table)
        else:
            for name in SHOW_FIELDS:
                value = job.get(name)
                if value is not None:
                    self.stream.write(f"{name}\t{_one_line(str(value))}\n")

    def job_id(self, job: Job, what: str) -> None:
        """A job just made or changed: its id (plain), or a line saying what happened."""
        if self.json_mode:
            self._json(job)
        elif self.rich:
            line = Text(f"{what} ")
            line.append(str(job["id"]), style="bold")
            line.append(" ")
            line.append(status_text(str(job["status"])))
            self._console().print(line)
        else:
            self.stream.write(f"{job['id']}\t{job['status']}\n")


def status_text(status: str) -> Text:
    """A status in its colour."""
    return Text(status, style=STATUS_STYLES.get(status, ""))


def _one_line(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ")
