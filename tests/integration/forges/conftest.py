"""Fixtures of the commit status tests: forge doubles, clients of them, the outbox on real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest
import structlog
from redis.asyncio import Redis

from raibid_api.domain.jobs import Job, job_links
from raibid_api.forges.clients import GiteaStatusClient, GitHubStatusClient, StatusReporter
from raibid_api.forges.policy import ReportingPolicy
from raibid_api.forges.reporting import StatusReporting
from raibid_api.forges.routing import ForgeRouter, ForgeTarget
from raibid_api.forges.worker import StatusWorker
from raibid_api.jobs.cursor import CursorCodec
from raibid_api.jobs.service import JobService
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys
from raibid_api.storage.outbox import StatusOutbox
from tests.factories import ManualClock
from tests.integration.forges.forge_double import Flavour, ForgeDouble

FORGE_TOKEN = "forge-token-5f8b0c2e9a7d41c3"
KNOWN_REPO = "acme/widgets"
PUBLIC_URL = "https://ci.example.org"
CONTEXT = "raibid-ci"
LogEvents = list[dict[str, object]]


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


@pytest.fixture
def captured_logs() -> Iterator[LogEvents]:
    """Every structlog event of the test, as dicts."""
    with structlog.testing.capture_logs() as events:
        yield events  # type: ignore[misc]


@pytest.fixture(params=["gitea", "forgejo", "github"])
async def forge(request: pytest.FixtureRequest) -> AsyncIterator[ForgeUnderTest]:
    """Each forge in turn: its double with one known repository, and its client."""
    name = str(request.param)
    double = ForgeDouble(flavour_of(name), FORGE_TOKEN, {KNOWN_REPO})
    await double.start()
    reporter = client_for(name, double.url)
    yield ForgeUnderTest(name, double, reporter)
    await reporter.aclose()
    await double.stop()


@pytest.fixture
async def gitea() -> AsyncIterator[ForgeDouble]:
    double = ForgeDouble("gitea", FORGE_TOKEN, {KNOWN_REPO})
    await double.start()
    yield double
    await double.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


Replica = Callable[[str], StatusOutbox]


@pytest.fixture
def replica(redis: Redis, keys: Keys) -> Replica:
    """The outbox as another replica (another consumer of the group) reads it."""
    return lambda name: StatusOutbox(redis, keys, consumer=name, record_ttl_s=3600)


@pytest.fixture
async def outbox(replica: Replica) -> StatusOutbox:
    box = replica("replica-a")
    await box.ensure_group()
    return box


@pytest.fixture
async def store(redis: Redis, keys: Keys) -> JobStore:
    job_store = JobStore(redis, keys, retention_s=3600, events_maxlen=1000)
    await job_store.ensure_queue_group()
    return job_store


@pytest.fixture
def jobs(store: JobStore, clock: ManualClock) -> JobService:
    return JobService(store, clock, CursorCodec(b"k" * 32), public_url=PUBLIC_URL,
                      clone_url_schemes=["https"])  # fmt: skip


@pytest.fixture
async def router(gitea: ForgeDouble) -> AsyncIterator[ForgeRouter]:
    """Routes gitea jobs (and manual jobs cloned from the double's host) to the Gitea double."""
    target = ForgeTarget("gitea", client_for("gitea", gitea.url), CONTEXT, gitea.url)
    routes = ForgeRouter([target])
    yield routes
    await routes.aclose()


@pytest.fixture
def reporting(
    outbox: StatusOutbox, router: ForgeRouter, jobs: JobService, clock: ManualClock
) -> StatusReporting:
    return StatusReporting(outbox, router, jobs, clock, ReportingPolicy())


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
