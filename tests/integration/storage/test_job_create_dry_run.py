"""`job_create.lua` with ``dry_run``: the outcome a real run then has, and not one key written."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from raibid_api.domain.jobs import Delivery, Supersession
from raibid_api.domain.limits import RATE_WINDOW_MS, RateLimit
from raibid_api.errors import RateLimitedError
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys
from raibid_api.storage.scripts import Superseded
from tests.support.factories import make_job
from tests.support.keystate import assert_unchanged, key_state

T0 = 1_790_000_000_000
LINE = Supersession("acme/widgets", "branch:feature", "superseded")
LIMIT = RateLimit("webhook deliveries", [("source", "192.0.2.1"), ("repo", "acme/widgets")], 2)


def feature_job(created_ms: int, commit: str) -> dict[str, object]:
    return make_job(created_ms, ref="refs/heads/feature", branch="feature", commit=commit)


async def test_a_dry_run_supersedes_as_the_real_run_does_and_writes_nothing(
    store: JobStore, redis: Redis, prefix: str
) -> None:
    old = feature_job(T0, "a" * 40)
    await store.create(old, T0, coalesce=True, supersede=LINE)
    new = feature_job(T0 + 5, "b" * 40)
    before = await key_state(redis, prefix)

    dry = await store.create(new, T0 + 5, coalesce=True, supersede=LINE, dry_run=True)

    assert_unchanged(before, await key_state(redis, prefix))
    real = await store.create(new, T0 + 5, coalesce=True, supersede=LINE)
    assert dry.superseded == Superseded(str(old["id"]), cancelled_here=True)
    assert (real.job_id, real.duplicate) == (dry.job_id, dry.duplicate)
    assert real.superseded is not None
    assert (real.superseded.job_id, real.superseded.cancelled_here) == (old["id"], True)
    assert real.superseded.fields is not None
    assert real.superseded.fields["status"] == "cancelled"


async def test_a_dry_run_finds_duplicates_as_the_real_run_does_and_writes_nothing(
    store: JobStore, redis: Redis, prefix: str
) -> None:
    first = make_job(T0)
    await store.create(first, T0, delivery=Delivery("gitea", "d-1"), coalesce=True)
    before = await key_state(redis, prefix)

    redelivered = await store.create(
        make_job(T0 + 1), T0 + 1, delivery=Delivery("gitea", "d-1"), dry_run=True
    )
    # a real run would record d-2 as a delivery of the first job: a dry run does not
    same_content = await store.create(
        make_job(T0 + 1), T0 + 1, delivery=Delivery("gitea", "d-2"), coalesce=True, dry_run=True
    )

    assert_unchanged(before, await key_state(redis, prefix))
    assert (redelivered.job_id, redelivered.duplicate) == (first["id"], "delivery")
    assert (same_content.job_id, same_content.duplicate) == (first["id"], "content")


async def test_a_dry_run_checks_a_full_window_without_counting_or_trimming(
    store: JobStore, redis: Redis, keys: Keys, prefix: str
) -> None:
    await store.create(make_job(T0, commit="1" * 40), T0, limit=LIMIT)
    later = T0 + RATE_WINDOW_MS // 2
    await store.create(make_job(later, commit="2" * 40), later, limit=LIMIT)
    before = await key_state(redis, prefix)

    with pytest.raises(RateLimitedError) as refused:
        await store.create(make_job(later + 1), later + 1, limit=LIMIT, dry_run=True)
    # the first request left the window: a real run would trim it and count this one
    passed = T0 + RATE_WINDOW_MS + 1
    allowed = await store.create(make_job(passed), passed, limit=LIMIT, dry_run=True)

    assert_unchanged(before, await key_state(redis, prefix))
    assert await redis.zcard(keys.rate_limit("source", "192.0.2.1")) == 2
    assert refused.value.retry_after == RATE_WINDOW_MS // 2000
    assert allowed.duplicate is None
    with pytest.raises(RateLimitedError) as really:
        await store.create(make_job(later + 1), later + 1, limit=LIMIT)
    assert really.value.retry_after == refused.value.retry_after
