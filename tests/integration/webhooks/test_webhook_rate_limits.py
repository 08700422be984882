"""Rate limits: per source address and per repository, answered 429 with Retry-After."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from tests.support.aliases import SettingsFactory
from tests.support.api import READ, assert_error
from tests.support.webhook_app import serving
from tests.support.webhook_deliveries import deliver, headers_for, job_ids, push_body, sha

LIMIT = 3


async def test_source_over_its_limit_gets_429_with_retry_after(
    settings_for: SettingsFactory, raw_redis: Redis, prefix: str
) -> None:
    settings = settings_for(rate_limit_per_minute=LIMIT)
    async with serving(settings, ("198.51.100.1", 1)) as client:
        accepted = [await deliver(client, push_body(sha(n), repo=f"acme/r{n}")) for n in range(3)]

        refused = await deliver(client, push_body(sha(9), repo="acme/r9"))

    assert [a.status_code for a in accepted] == [202] * LIMIT
    assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert len(await job_ids(raw_redis, prefix)) == LIMIT


async def test_repository_over_its_limit_gets_429_from_any_source(
    settings_for: SettingsFactory, raw_redis: Redis, prefix: str
) -> None:
    settings = settings_for(rate_limit_per_minute=LIMIT)
    for n in range(LIMIT):
        async with serving(settings, (f"198.51.100.{n + 1}", 1)) as client:
            assert (await deliver(client, push_body(sha(n)))).status_code == 202

    async with serving(settings, ("198.51.100.99", 1)) as client:
        refused = await deliver(client, push_body(sha(7)))
        other_repo = await deliver(client, push_body(sha(8), repo="acme/other"))

    assert_error(refused, 429, "rate_limited")
    assert "repo" in refused.json()["message"]
    assert other_repo.status_code == 202


async def test_unsigned_requests_do_not_spend_a_repository_budget(
    settings_for: SettingsFactory, raw_redis: Redis
) -> None:
    settings = settings_for(rate_limit_per_minute=LIMIT)
    body = push_body(sha(1))
    for n in range(LIMIT + 2):
        async with serving(settings, (f"203.0.113.{n + 1}", 1)) as client:
            forged = headers_for(body) | {"x-gitea-signature": "0" * 64}
            answer = await client.post("/webhook/gitea", content=body, headers=forged)
            assert answer.status_code == 401

    async with serving(settings, ("198.51.100.50", 1)) as client:
        assert (await deliver(client, body)).status_code == 202


async def test_refused_deliveries_count_against_their_source(
    settings_for: SettingsFactory, raw_redis: Redis
) -> None:
    settings = settings_for(rate_limit_per_minute=LIMIT)
    body = push_body(sha(1))
    forged = headers_for(body) | {"x-gitea-signature": "0" * 64}
    async with serving(settings, ("203.0.113.200", 1)) as client:
        answers = [
            await client.post("/webhook/gitea", content=body, headers=forged) for _ in range(4)
        ]
        journal = (await client.get("/webhook/deliveries", headers=READ)).json()["deliveries"]

    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert [e["reason"] for e in journal] == ["rate_limited"] + ["signature_mismatch"] * 3


async def test_limits_still_count_after_redis_forgot_its_scripts(
    settings_for: SettingsFactory, raw_redis: Redis, prefix: str
) -> None:
    settings = settings_for(rate_limit_per_minute=1)
    async with serving(settings, ("198.51.100.7", 1)) as client:
        assert (await deliver(client, push_body(sha(1), repo="acme/a"))).status_code == 202
        # as after a restart of Redis without persistence of its script cache
        await raw_redis.script_flush()

        refused = await deliver(client, push_body(sha(2), repo="acme/b"))

    assert_error(refused, 429, "rate_limited")
    assert await raw_redis.zcard(f"{prefix}:ratelimit:source:198.51.100.7") == 1


async def test_concurrent_deliveries_share_the_limit_exactly(
    settings_for: SettingsFactory, raw_redis: Redis, prefix: str
) -> None:
    settings = settings_for(rate_limit_per_minute=10)
    async with serving(settings, ("198.51.100.8", 1)) as client:
        answers = await asyncio.gather(
            *(deliver(client, push_body(sha(n), repo=f"acme/r{n}")) for n in range(25))
        )

    assert sorted(a.status_code for a in answers) == [202] * 10 + [429] * 15
    assert len(await job_ids(raw_redis, prefix)) == 10
