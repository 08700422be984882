"""The commit status tests' forges: the known repository and token, clients of the doubles, and
driving the status workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from raibid_api.domain.jobs import Job, job_links
from raibid_api.forges.clients import GiteaStatusClient, GitHubStatusClient, StatusReporter
from raibid_api.forges.worker import StatusWorker
from raibid_api.storage.outbox import StatusOutbox
from tests.support.forge_double import Flavour, ForgeDouble

FORGE_TOKEN = "forge-token-5f8b0c2e9a7d41c3"
KNOWN_REPO = "acme/widgets"
PUBLIC_URL = "https://ci.example.org"
CONTEXT = "raibid-ci"


@dataclass
class ForgeUnderTest:
    """A forge double and the client that talks to it."""

    name: str
    double: ForgeDouble
    reporter: StatusReporter


def flavour_of(forge: str) -> Flavour:
    return "github" if forge == "github" else "gitea"


def client_for(
    forge: str, url: str, token: str = FORGE_TOKEN, timeout_s: float = 2.0
) -> StatusReporter:
    if forge == "github":
        return GitHubStatusClient(url, token, timeout_s=timeout_s)
    return GiteaStatusClient(url, token, timeout_s=timeout_s)


# the outbox as another replica (another consumer of the group) reads it, by consumer name
Replica = Callable[[str], StatusOutbox]


def linked(job: Job) -> Job:
    """The job as the job service hands it to listeners: with its links."""
    return job | {"links": job_links(PUBLIC_URL, str(job["id"]))}


async def drain(*workers: StatusWorker, limit: int = 50) -> int:
    """Run the workers until none finds a report; return how many they handled."""
    handled = 0
    for _ in range(limit):
        counts = await asyncio.gather(*(worker.run_once() for worker in workers))
        if not any(counts):
            return handled
        handled += sum(counts)
    pytest.fail(f"workers still busy after {limit} rounds")
