"""Plain factory functions for test data, with keyword overrides."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from raibid_api.domain.jobs import Job, format_time


@dataclass
class ManualClock:
    """A clock the test moves by hand."""

    ms: int = 1_790_000_000_000

    def now_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


def make_job(created_ms: int = 1_790_000_000_000, **overrides: object) -> Job:
    """A pending push job with every Job JSON field present."""
    job: Job = {
        "id": str(uuid.uuid4()),
        "status": "pending",
        "repo": "acme/widgets",
        "clone_url": "https://git.example.org/acme/widgets.git",
        "ref": "refs/heads/main",
        "branch": "main",
        "tag": None,
        "commit": "a" * 40,
        "event": "push",
        "forge": "gitea",
        "delivery_id": None,
        "pull_request": None,
        "author": "Ada",
        "pusher": "ada",
        "message": "Fix the widget",
        "created_at": format_time(created_ms),
        "started_at": None,
        "finished_at": None,
        "duration": None,
        "exit_code": None,
        "agent_id": None,
        "attempt": 1,
        "retry_of": None,
        "reason": None,
        "request_id": "req-0123456789abcdef",
    }
    return job | overrides
