"""Which forge a job's statuses go to, and the report that carries a job's status there.

A job from a webhook names its forge. A manual job (``forge`` null) is reported to the forge whose
API URL has the host of the job's clone URL (``github.com`` clones go to ``api.github.com``);
a job with no commit sha yet, or of a forge without a URL and token, is not reported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from raibid_api.domain.jobs import Job, JobStatus
from raibid_api.forges.clients import StatusReporter
from raibid_api.forges.states import commit_state, describe, report_rank
from raibid_api.storage.outbox import StatusReport

_SCP_LIKE = re.compile(r"^[\w.-]+@(?P<host>[\w.-]+):")
_GITHUB_API_HOST = "api.github.com"


@dataclass(frozen=True)
class ForgeTarget:
    """One configured forge: its name, its client, and the status context it shows."""

    name: str  # gitea | forgejo | github
    reporter: StatusReporter
    context: str
    api_url: str

    @property
    def hosts(self) -> frozenset[str]:
        """The hosts of the clone URLs this forge serves."""
        host = (urlsplit(self.api_url).hostname or "").lower()
        return frozenset({host, "github.com"} if host == _GITHUB_API_HOST else {host})


def clone_host(clone_url: str | None) -> str | None:
    """The host of a clone URL (``https://h/o/r.git``, ``ssh://git@h/o/r``, ``git@h:o/r``)."""
    if not clone_url:
        return None
    scp = _SCP_LIKE.match(clone_url)
    if scp:
        return scp["host"].lower()
    host = urlsplit(clone_url).hostname
    return host.lower() if host else None


class ForgeRouter:
    """The configured forges, and the report each job's status makes."""

    def __init__(self, targets: Sequence[ForgeTarget]) -> None:
        self._targets = list(targets)
        self._by_name = {target.name: target for target in targets}

    @property
    def forges(self) -> list[str]:
        """The names of the configured forges."""
        return list(self._by_name)

    def reporter(self, forge: str) -> StatusReporter | None:
        """The client of ``forge``, or None when it is not configured."""
        target = self._by_name.get(forge)
        return target.reporter if target else None

    def target_for(self, job: Job) -> ForgeTarget | None:
        """The forge ``job``'s statuses go to, or None."""
        if job.get("forge"):
            return self._by_name.get(str(job["forge"]))
        host = clone_host(job.get("clone_url"))
        return next((t for t in self._targets if host and host in t.hosts), None)

    def report_for(self, job: Job) -> StatusReport | None:
        """The report of ``job``'s current status, or None when it is not reported."""
        target = self.target_for(job)
        if target is None or not job.get("commit") or "/" not in str(job.get("repo") or ""):
            return None
        return StatusReport(
            job_id=str(job["id"]),
            forge=target.name,
            repo=str(job["repo"]),
            commit=str(job["commit"]),
            state=commit_state(job),
            description=describe(job),
            target_url=str((job.get("links") or {}).get("web") or ""),
            context=target.context,
            rank=report_rank(job),
            final=JobStatus(job["status"]).is_terminal,
        )

    async def aclose(self) -> None:
        """Close every client."""
        for target in self._targets:
            await target.reporter.aclose()
