"""The exit statuses of the terminal client (docs/client.md lists them)."""

from __future__ import annotations

from raibid_api.domain.jobs import JobStatus

SUCCESS = 0
"""The command did what it was asked; `logs -f`: the job succeeded."""
FAILED = 1
"""`logs -f`, `--follow`: the job failed."""
USAGE = 2
"""A bad option or argument (also Typer's own status for those)."""
CANCELLED = 3
"""`logs -f`, `--follow`: the job was cancelled."""
REFUSED = 4
"""The server refused the request: 4xx (unknown job, bad token, a job that cannot be cancelled)."""
UNREACHABLE = 5
"""No answer: connection refused, timed out, dropped for too long, or a 5xx."""
INTERRUPTED = 130
"""Ctrl-C."""

_OF_STATUS = {JobStatus.SUCCESS: SUCCESS, JobStatus.FAILED: FAILED, JobStatus.CANCELLED: CANCELLED}


def of_job(status: str) -> int:
    """The exit status a followed job ends the command with."""
    return _OF_STATUS.get(JobStatus(status), FAILED)
