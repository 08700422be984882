"""Every branch of job_create.lua, job_transition.lua and job_list.lua against a real Redis."""

from __future__ import annotations

import orjson
import pytest

from raibid_api.domain.jobs import AttemptGuard, Delivery, JobEvent, JobFilter, JobStatus
from raibid_api.errors import JobNotFoundError, JobTokenError, TransitionConflictError
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import GROUP, Keys
from tests.support.aliases import RawRedis
from tests.support.factories import make_job

T0 = 1_790_000_000_000


async def test_create_writes_hash_indexes_and_queue_entry(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    job = make_job(T0)
    outcome = await store.create(job, T0)
    assert (outcome.job_id, outcome.duplicate) == (job["id"], None)
    assert await store.get(job["id"]) == job
    for index in (keys.index_all, keys.index_status("pending"), keys.index_repo("acme/widgets"),
                  keys.index_branch("main"), keys.index_event("push")):  # fmt: skip
        assert await redis.zscore(index, job["id"]) == T0
    [(entry_id, fields)] = await redis.xrange(keys.queue)
    assert fields["job_id"] == job["id"]
    assert orjson.loads(fields["job"]) == job
    assert await redis.hget(keys.job(job["id"]), "_entry") == entry_id


async def test_queue_group_starts_at_zero_and_is_created_once(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    await store.ensure_queue_group()
    [group] = await redis.xinfo_groups(keys.queue)
    assert group["name"] == GROUP
    assert group["last-delivered-id"] == "0-0"


async def test_known_delivery_returns_its_job_and_writes_nothing(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    first = make_job(T0)
    delivery = Delivery("gitea", "d-1")
    await store.create(first, T0, delivery=delivery)
    again = await store.create(make_job(T0 + 5), T0 + 5, delivery=delivery)
    assert (again.job_id, again.duplicate) == (first["id"], "delivery")
    assert await redis.xlen(keys.queue) == 1
    assert await redis.zcard(keys.index_all) == 1
    assert await redis.ttl(keys.delivery("gitea", "d-1")) > 6 * 86400


async def test_same_content_while_active_is_coalesced_and_records_the_delivery(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    first = make_job(T0)
    await store.create(first, T0, delivery=Delivery("gitea", "d-1"), coalesce=True)
    second = await store.create(
        make_job(T0 + 1), T0 + 1, delivery=Delivery("gitea", "d-2"), coalesce=True
    )
    assert (second.job_id, second.duplicate) == (first["id"], "content")
    assert await redis.get(keys.delivery("gitea", "d-2")) == first["id"]
    assert await redis.xlen(keys.queue) == 1


async def test_ending_a_job_frees_its_content_key(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    job = make_job(T0)
    await store.create(job, T0, coalesce=True)
    [content_key] = [k async for k in redis.scan_iter(match=f"{keys.prefix}:content:*")]
    assert await redis.get(content_key) == job["id"]
    await store.transition(job, "cancelled", T0 + 10)
    assert await redis.exists(content_key) == 0


async def test_same_content_after_the_job_ended_builds_again(store: JobStore) -> None:
    first = make_job(T0)
    await store.create(first, T0, coalesce=True)
    await store.transition(first, "cancelled", T0 + 10)
    second = make_job(T0 + 20)
    outcome = await store.create(second, T0 + 20, coalesce=True)
    assert (outcome.job_id, outcome.duplicate) == (second["id"], None)


async def test_transition_moves_status_index_and_writes_a_status_event(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    job = make_job(T0)
    await store.create(job, T0)
    after = await store.transition(job, "running", T0 + 1, {"agent_id": "a1"})
    assert after["status"] == "running"
    stored = await store.get(job["id"])
    assert stored is not None
    assert (stored["status"], stored["agent_id"]) == ("running", "a1")
    assert await redis.zscore(keys.index_status("pending"), job["id"]) is None
    assert await redis.zscore(keys.index_status("running"), job["id"]) == T0
    [(_, event)] = await redis.xrange(keys.events(job["id"]))
    assert event["type"] == "status"
    assert event["status"] == "running"
    assert event["agent_id"] == "a1"
    assert not any(name.startswith("_") for name in event)
    assert await redis.ttl(keys.job(job["id"])) == -1


async def test_transition_from_another_status_is_a_conflict_and_changes_nothing(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    job = make_job(T0)
    await store.create(job, T0)
    with pytest.raises(TransitionConflictError, match="is pending, not running"):
        await store.transition(job | {"status": "running"}, "success", T0 + 1)
    assert (await store.get(job["id"])) == job
    assert await redis.exists(keys.events(job["id"])) == 0


async def test_transition_of_a_missing_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError):
        await store.transition(make_job(T0), "running", T0)


async def test_terminal_transition_acks_deletes_entry_and_starts_retention(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    job = make_job(T0)
    await store.create(job, T0)
    [[_, [(entry_id, _)]]] = await redis.xreadgroup(GROUP, "agent-1", {keys.queue: ">"}, count=1)
    running = await store.transition(job, "running", T0 + 1)
    await store.transition(running, "success", T0 + 2, {"exit_code": 0, "reason": None})
    assert await redis.xlen(keys.queue) == 0
    assert await redis.xpending(keys.queue, GROUP) == {
        "pending": 0, "min": None, "max": None, "consumers": []}  # fmt: skip
    assert 0 < await redis.ttl(keys.job(job["id"])) <= 60
    assert 0 < await redis.ttl(keys.events(job["id"])) <= 60
    assert (
        await redis.zscore(
            keys.index_expiry, f"{job['id']}\x1fsuccess\x1facme/widgets\x1fmain\x1fpush"
        )
        == T0 + 2 + 60_000
    )
    assert await redis.hget(keys.job(job["id"]), "_entry") is None
    assert entry_id


async def test_requeue_replaces_the_queue_entry(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    job = make_job(T0)
    await store.create(job, T0)
    [[_, [(old_entry, _)]]] = await redis.xreadgroup(GROUP, "agent-1", {keys.queue: ">"}, count=1)
    running = await store.transition(job, "running", T0 + 1, {"agent_id": "agent-1"})
    await store.transition(running, "pending", T0 + 2, {"attempt": 2, "agent_id": None},
                           requeue=True)  # fmt: skip
    [(new_entry, fields)] = await redis.xrange(keys.queue)
    assert new_entry != old_entry
    assert orjson.loads(fields["job"])["attempt"] == 2
    assert (await redis.xpending(keys.queue, GROUP))["pending"] == 0
    stored = await store.get(job["id"])
    assert stored is not None
    assert (stored["status"], stored["attempt"], stored["agent_id"]) == ("pending", 2, None)


async def test_list_pages_newest_first_across_tied_scores(store: JobStore) -> None:
    jobs = [make_job(T0 + (i // 3)) for i in range(9)]  # three jobs share each score
    for job in jobs:
        await store.create(job, T0 + jobs.index(job) // 3)
    seen: list[str] = []
    after = None
    while True:
        total, page = await store.list_page(JobFilter(), after, 2)
        assert total == 9
        if not page:
            break
        seen += [job["id"] for job, _ in page]
        after = (page[-1][1], page[-1][0]["id"])
    expected = sorted(jobs, key=lambda j: (j["created_at"], j["id"]), reverse=True)
    assert seen == [job["id"] for job in expected]


async def test_list_intersects_filters_and_counts_all_matches(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    for i in range(12):
        repo = "acme/a" if i % 2 else "acme/b"
        branch = "main" if i % 3 else "dev"
        await store.create(make_job(T0 + i, repo=repo, branch=branch), T0 + i)
    total, page = await store.list_page(JobFilter(repo="acme/a", branch="main"), None, 3)
    assert total == 4
    assert [job["created_at"] for job, _ in page] == sorted(
        (job["created_at"] for job, _ in page), reverse=True)  # fmt: skip
    assert all(job["repo"] == "acme/a" and job["branch"] == "main" for job, _ in page)
    assert [key async for key in redis.scan_iter(match=f"{keys.prefix}:scratch:*")] == []


async def test_list_since_bounds_the_result_and_the_total(store: JobStore) -> None:
    for i in range(5):
        await store.create(make_job(T0 + i * 1000), T0 + i * 1000)
    total, page = await store.list_page(JobFilter(since_ms=T0 + 3000), None, 10)
    assert total == 2
    assert len(page) == 2


async def test_prune_removes_expired_jobs_from_every_index(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    job = make_job(T0)
    await store.create(job, T0)
    await store.transition(job, "cancelled", T0 + 1)
    assert await store.prune_expired(T0 + 30_000) == 0
    assert await store.prune_expired(T0 + 61_000) == 1
    indexes = [keys.index_all, keys.index_status("cancelled"), keys.index_repo("acme/widgets"),
               keys.index_branch("main"), keys.index_event("push"), keys.index_expiry]  # fmt: skip
    for index in indexes:
        assert await redis.zcard(index) == 0
    assert await store.get(job["id"]) is None


async def test_cursor_secret_is_shared_through_redis(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    other = JobStore(redis, keys, retention_s=60, status_maxlen=10)
    assert await store.cursor_secret() == await other.cursor_secret()
    assert len(await store.cursor_secret()) == 64


async def test_job_status_strings_are_lowercase(store: JobStore) -> None:
    job = make_job(T0)
    await store.create(job, T0)
    after = await store.transition(job, JobStatus.CANCELLED.value, T0 + 1)
    assert after["status"] == "cancelled"


async def test_guarded_transition_acts_only_on_the_attempt_it_names(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    job = make_job(T0)
    await store.create(job, T0)
    running = await store.transition(
        job, "running", T0 + 1, {"_token": "digest-1", "_lease_until": T0 + 60_000}
    )
    with pytest.raises(JobTokenError):
        await store.transition(running, "failed", T0 + 2, guard=AttemptGuard("digest-0"))
    with pytest.raises(TransitionConflictError):  # the lease has not ended by then
        await store.transition(
            running, "failed", T0 + 2, guard=AttemptGuard("digest-1", lease_ended_by=T0 + 2)
        )
    assert await redis.hget(keys.job(job["id"]), "status") == "running"
    await store.transition(
        running, "failed", T0 + 70_000,
        guard=AttemptGuard("digest-1", lease_ended_by=T0 + 70_000),
    )  # fmt: skip
    assert await redis.hget(keys.job(job["id"]), "status") == "failed"


async def test_list_since_with_several_filters_counts_only_the_range(store: JobStore) -> None:
    for i in range(10):
        job = make_job(T0 + i * 1000, repo="acme/a" if i % 2 else "acme/b")
        await store.create(job, T0 + i * 1000)
    total, page = await store.list_page(
        JobFilter(repo="acme/a", event=JobEvent.PUSH, since_ms=T0 + 5000), None, 10
    )
    assert total == 3
    assert [score for _, score in page] == [T0 + 9000, T0 + 7000, T0 + 5000]


async def test_status_and_repo_index_follows_the_job(
    store: JobStore, redis: RawRedis, keys: Keys
) -> None:
    job = make_job(T0)
    await store.create(job, T0)
    pending = keys.index_status_repo("pending", "acme/widgets")
    cancelled = keys.index_status_repo("cancelled", "acme/widgets")
    assert await redis.zscore(pending, job["id"]) == T0
    await store.transition(job, "cancelled", T0 + 1)
    assert await redis.zscore(pending, job["id"]) is None
    assert await redis.zscore(cancelled, job["id"]) == T0
    total, page = await store.list_page(
        JobFilter(status=JobStatus.CANCELLED, repo="acme/widgets"), None, 10
    )
    assert (total, [listed["id"] for listed, _ in page]) == (1, [job["id"]])
    await store.prune_expired(T0 + 120_000)
    assert await redis.zcard(cancelled) == 0
