"""Storage against a Redis that stalls, loses a reply, or loses its data, each one real.

A private redis-server per test, since each test breaks it: SIGSTOP for a stall (``DEBUG SLEEP``
is disabled on Redis 7), a proxy that drops the reply after forwarding the command for a lost
reply, ``FLUSHALL`` and ``SCRIPT FLUSH`` for a Redis that lost its data.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from redis.asyncio import Redis

from raibid_api.config import RedisSettings
from raibid_api.domain.jobs import JobStatus
from raibid_api.errors import ServiceUnavailableError
from raibid_api.storage.agent_store import AgentStore
from raibid_api.storage.connection import create_redis, settle_background
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import GROUP, Keys
from raibid_api.storage.outbox import STATUS_GROUP, StatusOutbox
from tests.support.factories import make_job
from tests.support.lossy_proxy import LossyProxy
from tests.support.polling import eventually
from tests.support.redis_nodes import RedisNode

T0 = 1_790_000_000_000
TIMEOUT_S = 0.5
SLACK_S = 0.3  # the event loop's own delay on a busy machine
TOKEN_HASH = "a" * 64
SETTINGS = RedisSettings(socket_timeout=timedelta(seconds=TIMEOUT_S))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RedisNode]:
    """A private redis-server this test may break."""
    started = RedisNode(tmp_path / "redis", ["--appendonly", "no"]).start()
    yield started
    started.stop()


@pytest.fixture
async def direct(node: RedisNode) -> AsyncIterator[Redis]:
    """A client that reaches the node without the proxy, to see what really happened."""
    client = Redis.from_url(node.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def proxy(node: RedisNode) -> AsyncIterator[LossyProxy]:
    started = await LossyProxy(node.port).start()
    yield started
    await started.aclose()


@pytest.fixture
async def through_proxy(proxy: LossyProxy) -> AsyncIterator[Redis]:
    client = create_redis(proxy.url, SETTINGS)
    yield client
    await client.aclose()


@pytest.fixture
async def bounded(node: RedisNode) -> AsyncIterator[Redis]:
    """A client of the node whose calls wait at most `TIMEOUT_S`."""
    client = create_redis(node.url, SETTINGS)
    yield client
    await client.aclose()


def _stores(redis: Redis, keys: Keys) -> tuple[JobStore, AgentStore]:
    return (JobStore(redis, keys, retention_s=60, status_maxlen=1000),
            AgentStore(redis, keys, events_maxlen=1000))  # fmt: skip


async def test_a_stalled_redis_answers_503_within_the_timeout_and_the_late_write_lands_once(
    node: RedisNode, bounded: Redis, direct: Redis, keys: Keys
) -> None:
    store, _ = _stores(bounded, keys)
    await store.ensure_queue_group()
    first = make_job(T0)
    await store.create(first, T0)
    stalled = make_job(T0 + 1)

    node.stall()
    try:
        # the create first: it goes out on a pooled connection (a new one would not get past
        # its handshake, and nothing would be sent)
        for call in (lambda: store.create(stalled, T0 + 1), lambda: store.get(first["id"])):
            started = time.monotonic()
            with pytest.raises(ServiceUnavailableError):
                await call()
            assert time.monotonic() - started <= TIMEOUT_S + SLACK_S
    finally:
        node.resume()

    # Redis read the create once it ran again: the job is there once, with one queue entry
    await eventually(lambda: _exists(direct, keys.job(stalled["id"])), 5.0, "the late create")
    assert await store.get(stalled["id"]) == stalled
    again = await store.create(stalled, T0 + 1)  # a caller's retry after its 503
    assert again.job_id == stalled["id"]
    assert await direct.xlen(keys.queue) == 2
    assert await direct.zcard(keys.index_all) == 2


async def test_calls_waiting_for_a_connection_of_a_stalled_redis_end_within_the_timeout_too(
    node: RedisNode, keys: Keys
) -> None:
    few = SETTINGS.model_copy(update={"max_connections": 2})
    client = create_redis(node.url, few)
    store, _ = _stores(client, keys)
    try:
        await store.ensure_queue_group()
        node.stall()
        started = time.monotonic()
        # two calls hold both connections; the others wait for one, and end with them
        outcomes = await asyncio.gather(
            *(store.get(f"job-{i}") for i in range(5)), return_exceptions=True
        )
        elapsed = time.monotonic() - started
    finally:
        node.resume()
        await settle_background()
        await client.aclose()
    assert all(isinstance(o, ServiceUnavailableError) for o in outcomes), outcomes
    assert elapsed <= TIMEOUT_S + SLACK_S


async def test_a_create_whose_reply_was_lost_is_sent_again_without_a_second_job(
    proxy: LossyProxy, through_proxy: Redis, direct: Redis, keys: Keys
) -> None:
    store, _ = _stores(through_proxy, keys)
    await store.ensure_queue_group()
    await store.create(make_job(T0 - 1), T0 - 1)  # the script is loaded: its reply is the one lost
    job = make_job(T0)

    proxy.drop_replies = True
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError):
        await store.create(job, T0)
    assert time.monotonic() - started <= TIMEOUT_S + SLACK_S
    proxy.drop_replies = False

    assert proxy.dropped_bytes > 0
    assert await _exists(direct, keys.job(job["id"]))  # it ran; only the answer was lost
    outcome = await store.create(job, T0)
    assert (outcome.job_id, outcome.duplicate) == (job["id"], None)
    assert await direct.xlen(keys.queue) == 2
    assert await direct.zcard(keys.index_status("pending")) == 2


async def test_a_log_batch_without_offset_sent_again_after_a_lost_reply_is_stored_once(
    proxy: LossyProxy, through_proxy: Redis, direct: Redis, keys: Keys
) -> None:
    store, agents = _stores(through_proxy, keys)
    await store.ensure_queue_group()
    job = make_job(T0)
    await store.create(job, T0)
    await store.transition(job, JobStatus.RUNNING, T0, {
        "_token": TOKEN_HASH, "_lease_until": T0 + 60_000, "_log_count": 0,
    })  # fmt: skip
    lines = [("stdout", "one"), ("stderr", "two")]
    stamp = "2026-09-21T00:00:00Z"
    assert (await agents.append_logs(job["id"], TOKEN_HASH, T0, stamp, None, [], "b-0"))[0] == 0

    proxy.drop_replies = True
    with pytest.raises(ServiceUnavailableError):
        await agents.append_logs(job["id"], TOKEN_HASH, T0, stamp, None, lines, "b-1")
    proxy.drop_replies = False

    again = await agents.append_logs(job["id"], TOKEN_HASH, T0, stamp, None, lines, "b-1")
    assert again[0] == 2
    assert (await agents.append_logs(job["id"], TOKEN_HASH, T0, stamp, None, lines, "b-2"))[0] == 4
    entries = cast("list[tuple[str, dict[str, str]]]", await direct.xrange(keys.events(job["id"])))
    logged = [fields["line"] for _, fields in entries if fields["type"] == "log"]
    assert logged == ["one", "two", "one", "two"]


async def test_claims_and_transitions_repair_a_redis_that_lost_its_data(
    bounded: Redis, direct: Redis, keys: Keys
) -> None:
    store, agents = _stores(bounded, keys)
    await store.ensure_queue_group()
    secret = await store.cursor_secret()
    await store.create(make_job(T0), T0)

    await direct.flushall()
    await direct.script_flush()
    after = make_job(T0 + 1)
    await store.create(after, T0 + 1)  # the scripts are loaded again; the stream has no group

    entry = await agents.next_entry("agent-1", 0)  # NOGROUP: the group is made, at id 0
    assert entry is not None
    assert entry[1] == after["id"]
    running = await store.transition(after, JobStatus.RUNNING, T0 + 2)
    await store.transition(running, JobStatus.SUCCESS, T0 + 3)
    assert await direct.xlen(keys.queue) == 0

    await direct.flushall()
    await store.repair()  # what /ready runs
    [group] = await direct.xinfo_groups(keys.queue)
    assert group["name"] == GROUP
    assert str(await direct.get(keys.cursor_secret)).encode() == secret


async def test_the_status_outbox_repairs_its_lost_group_where_it_reads(
    bounded: Redis, direct: Redis, keys: Keys
) -> None:
    outbox = StatusOutbox(bounded, keys, consumer="replica-1", record_ttl_s=60)
    await outbox.ensure_group()
    await direct.flushall()

    assert await outbox.claim_stale(1000, 10) == []
    await direct.flushall()
    assert await outbox.read_new(10) == []

    [group] = await direct.xinfo_groups(keys.outbox_status)
    assert group["name"] == STATUS_GROUP


async def _exists(redis: Redis, key: str) -> bool:
    return bool(await redis.exists(key))


async def test_a_long_poll_longer_than_the_timeout_waits_in_slices_and_is_not_cut(
    bounded: Redis, keys: Keys
) -> None:
    store, agents = _stores(bounded, keys)
    await store.ensure_queue_group()
    started = time.monotonic()

    assert await agents.next_entry("agent-1", 2_000) is None  # an empty queue: nothing, no 503

    assert time.monotonic() - started <= TIMEOUT_S + SLACK_S  # one slice: half the deadline


async def test_a_repair_redis_refuses_fails_so_that_the_server_is_not_ready(
    node: RedisNode, tmp_path: Path, keys: Keys
) -> None:
    # a replica without the data (say a master demoted, still named as one): it refuses writes
    replica = RedisNode(tmp_path / "replica", ["--replicaof", "127.0.0.1", str(node.port)]).start()
    client = create_redis(replica.url, SETTINGS)
    try:
        store, _ = _stores(client, keys)
        with pytest.raises(ServiceUnavailableError, match="not ready to serve writes"):
            await store.repair()
    finally:
        await client.aclose()
        replica.stop()


async def test_a_full_redis_refusing_writes_answers_503_so_that_webhooks_are_spooled(
    tmp_path: Path, keys: Keys
) -> None:
    full = RedisNode(tmp_path / "full", ["--maxmemory-policy", "noeviction"]).start()
    client = create_redis(full.url, SETTINGS)
    try:
        store, _ = _stores(client, keys)
        await store.ensure_queue_group()
        await client.set("ballast", "x" * 2_000_000)
        await client.config_set("maxmemory", "1mb")  # now below what Redis holds
        with pytest.raises(ServiceUnavailableError, match="maxmemory"):
            await store.create(make_job(T0), T0)
    finally:
        await client.aclose()
        full.stop()
