"""The delivery journal (`GET /webhook/deliveries`) and `POST /webhook/{forge}/explain`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.aliases import RawRedis
from tests.support.api import READ, WRITE, assert_error
from tests.support.webhook_deliveries import (
    deliver,
    headers_for,
    job_ids,
    push_body,
    sha,
)
from tests.support.webhook_samples import fixture_delivery


async def journal(client: httpx.AsyncClient, **params: str | int) -> dict[str, Any]:
    answer = await client.get("/webhook/deliveries", params=params, headers=READ)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


async def test_journal_records_every_decision_newest_first(client: httpx.AsyncClient) -> None:
    created = await deliver(client, push_body(sha(1)), delivery_id="d-created")
    await deliver(client, push_body(sha(1)), delivery_id="d-created")
    await deliver(client, push_body(sha(2), message="wip [skip ci]"), delivery_id="d-skip")
    ping_headers, ping = fixture_delivery("github", "github/ping-1.json")
    await client.post("/webhook/github", content=ping, headers=ping_headers)
    forged = headers_for(push_body(sha(3))) | {"x-gitea-signature": "0" * 64}
    await client.post("/webhook/gitea", content=push_body(sha(3)), headers=forged)

    entries = (await journal(client))["deliveries"]

    assert isinstance(entries, list)
    summary = [(e["forge"], e["decision"], e["reason"], e["signature_valid"]) for e in entries]
    assert summary == [
        ("gitea", "rejected", "signature_mismatch", False),
        ("github", "ignored", "ping", True),
        ("gitea", "filtered", "skip_ci", True),
        ("gitea", "duplicate", "delivery", True),
        ("gitea", "created", None, True),
    ]
    newest_created = entries[-1]
    assert newest_created["job_id"] == created.json()["job_id"]
    assert newest_created["delivery_id"] == "d-created"
    assert newest_created["event"] == "push"
    assert newest_created["repo"] == "acme/widgets"
    assert newest_created["source"] == "192.0.2.10"
    assert newest_created["duration_ms"] > 0
    assert newest_created["received_at"].endswith("Z")


async def test_journal_filters_and_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    for n in range(5):
        await deliver(client, push_body(sha(n), repo=f"acme/r{n % 2}"))
    ping_headers, ping = fixture_delivery("github", "github/ping-1.json")
    await client.post("/webhook/github", content=ping, headers=ping_headers)

    repo0 = (await journal(client, repo="acme/r0"))["deliveries"]
    github = (await journal(client, forge="github"))["deliveries"]
    created = (await journal(client, decision="created"))["deliveries"]
    first = await journal(client, decision="created", limit=2)
    second = await journal(client, decision="created", limit=2, cursor=first["next_cursor"])
    third = await journal(client, decision="created", limit=2, cursor=second["next_cursor"])

    assert isinstance(repo0, list)
    assert {e["repo"] for e in repo0} == {"acme/r0"}
    assert len(repo0) == 3
    assert isinstance(github, list)
    assert [e["reason"] for e in github] == ["ping"]
    assert isinstance(created, list)
    assert len(created) == 5
    pages = [first, second, third]
    ids = [e["id"] for page in pages for e in page["deliveries"]]
    assert ids == [e["id"] for e in created]
    assert third["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["garbage", "1-2-3", "-1-0", "99999999999999999999999-0", "1"])
async def test_garbage_cursor_is_a_400(client: httpx.AsyncClient, cursor: str) -> None:
    answer = await client.get("/webhook/deliveries", params={"cursor": cursor}, headers=READ)

    assert_error(answer, 400, "invalid_cursor")


@pytest.mark.parametrize("limit", [0, 201, -1])
async def test_limit_outside_one_to_two_hundred_is_a_422(
    client: httpx.AsyncClient, limit: int
) -> None:
    answer = await client.get("/webhook/deliveries", params={"limit": limit}, headers=READ)

    assert_error(answer, 422, "validation_error")


async def test_journal_needs_the_read_scope(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/webhook/deliveries"), 401, "unauthenticated")


async def test_journal_entries_carry_no_secret(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    await deliver(client, push_body(sha(1)))
    await journal_written(client)

    entries: RawRedis = await raw_redis.xrange(f"{prefix}:webhook:deliveries")

    assert len(entries) == 1
    assert b"webhook-test-secret" not in repr(entries).encode()


async def journal_written(client: httpx.AsyncClient) -> None:
    """Have the journal write what it still holds queued: a listing does that first."""
    assert (await client.get("/webhook/deliveries", headers=READ)).status_code == 200


async def explain(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str], forge: str = "gitea"
) -> httpx.Response:
    return await client.post(
        f"/webhook/{forge}/explain",
        json={"headers": headers, "payload": body.decode()},
        headers=WRITE,
    )


async def test_explain_tells_a_new_job_and_what_it_supersedes_writing_nothing(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    old = (await deliver(client, push_body(sha(1)))).json()["job_id"]
    body = push_body(sha(2))
    await journal_written(client)
    state_before = {
        key: await raw_redis.dump(key) async for key in raw_redis.scan_iter(f"{prefix}:*")
    }

    answer = await explain(client, body, headers_for(body, delivery_id="d-2"))

    state_after = {
        key: await raw_redis.dump(key) async for key in raw_redis.scan_iter(f"{prefix}:*")
    }
    assert state_after == state_before
    assert answer.status_code == 200, answer.text
    verdict = answer.json()
    assert verdict["decision"] == "created"
    assert verdict["signature"] == "valid"
    assert verdict["delivery_id"] == "d-2"
    assert verdict["job"]["commit"] == sha(2)
    assert verdict["job"]["branch"] == "feature"
    assert verdict["supersedes"] == [old]


async def test_explain_tells_duplicates_by_delivery_and_by_content(
    client: httpx.AsyncClient,
) -> None:
    body = push_body(sha(1))
    made = (await deliver(client, body, delivery_id="d-1")).json()["job_id"]

    by_delivery = (await explain(client, body, headers_for(body, delivery_id="d-1"))).json()
    by_content = (await explain(client, body, headers_for(body, delivery_id="d-9"))).json()

    assert (by_delivery["decision"], by_delivery["reason"]) == ("duplicate", "delivery")
    assert (by_content["decision"], by_content["reason"]) == ("duplicate", "content")
    assert by_delivery["duplicate_of"] == by_content["duplicate_of"] == made


async def test_explain_tells_rejections_and_ignored_events(client: httpx.AsyncClient) -> None:
    body = push_body(sha(1))
    forged = headers_for(body) | {"x-gitea-signature": "0" * 64}

    rejected = (await explain(client, body, forged)).json()
    ping_headers, ping = fixture_delivery("github", "github/ping-1.json")
    ignored = (await explain(client, ping, ping_headers, forge="github")).json()
    skipped = push_body(sha(2), message="x [ci skip]")
    filtered = (await explain(client, skipped, headers_for(skipped))).json()

    assert (rejected["decision"], rejected["reason"]) == ("rejected", "signature_mismatch")
    assert (ignored["decision"], ignored["reason"]) == ("ignored", "ping")
    assert (filtered["decision"], filtered["reason"]) == ("filtered", "skip_ci")


async def test_explain_takes_the_payload_as_an_object_too(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/webhook/gitea/explain",
        json={"headers": {"X-Gitea-Event-Type": "push"}, "payload": {"ref": "refs/heads/x"}},
        headers=WRITE,
    )

    assert answer.status_code == 200
    assert answer.json()["decision"] == "rejected"
    assert answer.json()["reason"] == "signature_missing"


async def test_explain_needs_the_write_scope_and_a_known_forge(client: httpx.AsyncClient) -> None:
    body = {"headers": {}, "payload": "{}"}

    assert_error(
        await client.post("/webhook/gitea/explain", json=body, headers=READ), 403, "forbidden"
    )
    assert_error(
        await client.post("/webhook/gitlab/explain", json=body, headers=WRITE), 404, "not_found"
    )


async def test_explained_delivery_is_not_counted_by_the_rate_limit(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(1))

    await explain(client, body, headers_for(body))

    assert [k async for k in raw_redis.scan_iter(f"{prefix}:ratelimit:*")] == []
    assert await job_ids(raw_redis, prefix) == set()
