"""Fixtures of the commit status tests: forge doubles, clients of them, the outbox on real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from raibid_api.forges.policy import ReportingPolicy
from raibid_api.forges.reporting import StatusReporting
from raibid_api.forges.routing import ForgeRouter, ForgeTarget
from raibid_api.jobs.cursor import CursorCodec
from raibid_api.jobs.service import JobService
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys
from raibid_api.storage.outbox import StatusOutbox
from tests.support.factories import ManualClock
from tests.support.forge_double import ForgeDouble
from tests.support.forges import (
    CONTEXT,
    FORGE_TOKEN,
    KNOWN_REPO,
    PUBLIC_URL,
    ForgeUnderTest,
    Replica,
    client_for,
    flavour_of,
)


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
    job_store = JobStore(redis, keys, retention_s=3600, status_maxlen=1000)
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
