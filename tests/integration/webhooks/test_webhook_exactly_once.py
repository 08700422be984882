"""One push, one job: redeliveries, concurrent duplicates and coalesced content add no job."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from redis.asyncio import Redis

from raibid_api.webhooks.spool import SUFFIX
from tests.support.api import READ, WRITE
from tests.support.polling import eventually
from tests.support.webhook_deliveries import deliver, job_ids, new_id, push_body, sha
from tests.support.webhook_samples import SECRET, hex_hmac


async def test_redelivered_webhook_creates_no_second_job(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(1))
    delivery = new_id()

    first = await deliver(client, body, delivery_id=delivery)
    again = await deliver(client, body, delivery_id=delivery)

    assert first.status_code == 202, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json() | {"duplicate": "delivery"}
    assert await job_ids(raw_redis, prefix) == {first.json()["job_id"]}


async def test_redelivery_after_the_job_ended_still_returns_that_job(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(1))
    delivery = new_id()
    first = (await deliver(client, body, delivery_id=delivery)).json()
    await client.post(f"/jobs/{first['job_id']}/cancel", headers=WRITE)

    again = await deliver(client, body, delivery_id=delivery)

    assert again.status_code == 200
    assert again.json()["job_id"] == first["job_id"]
    assert await job_ids(raw_redis, prefix) == {first["job_id"]}


async def test_two_hundred_concurrent_deliveries_of_fifty_ids_make_fifty_jobs(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str, spool_dir: Path
) -> None:
    # 50 pushes of distinct commits, each delivered 4 times under its own delivery id, at once
    deliveries = [(push_body(sha(n), branch="main"), new_id()) for n in range(50)]
    sends = [deliver(client, body, delivery_id=d) for body, d in deliveries for _ in range(4)]

    answers = await asyncio.gather(*sends)

    # on a busy machine a delivery that could not be stored within webhooks.store_deadline is
    # spooled (202, no job yet) and replayed: exactly-once holds once the spool is drained
    spooled = [a for a in answers if a.status_code == 202 and a.json().get("spooled")]
    stored = [a for a in answers if a not in spooled]
    assert {a.status_code for a in stored} <= {200, 202}
    assert [a.status_code for a in stored].count(202) <= 50
    by_delivery: dict[str, set[str]] = {}
    for (_, delivery), answer in zip(
        [pair for pair in deliveries for _ in range(4)], answers, strict=True
    ):
        if answer not in spooled:
            by_delivery.setdefault(delivery, set()).add(answer.json()["job_id"])
    assert all(len(jobs) == 1 for jobs in by_delivery.values())

    async def fifty_jobs() -> bool:
        return len(await job_ids(raw_redis, prefix)) >= 50 and not list(
            spool_dir.glob(f"*{SUFFIX}")
        )

    await eventually(fifty_jobs, timeout=30.0, what="the spool to drain into fifty jobs")
    made = await job_ids(raw_redis, prefix)
    assert len(made) == 50
    assert {job for jobs in by_delivery.values() for job in jobs} <= made
    assert await raw_redis.xlen(f"{prefix}:jobs") == 50


async def test_same_content_under_a_new_delivery_id_coalesces_onto_the_active_job(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(7))
    first = await deliver(client, body)

    # a second hook on the same repository, or Gitea's "Replay" (new id, same body)
    second = await deliver(client, body)

    assert second.status_code == 200
    assert second.json() == first.json() | {"duplicate": "content"}
    assert await job_ids(raw_redis, prefix) == {first.json()["job_id"]}


async def test_same_content_after_the_job_ended_builds_again(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(7))
    first = (await deliver(client, body)).json()
    await client.post(f"/jobs/{first['job_id']}/cancel", headers=WRITE)

    replay = await deliver(client, body)

    assert replay.status_code == 202
    assert replay.json()["job_id"] != first["job_id"]
    assert await job_ids(raw_redis, prefix) == {first["job_id"], replay.json()["job_id"]}


async def test_webhooks_alias_path_serves_the_same_intake(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(3))
    delivery = new_id()

    first = await deliver(client, body, delivery_id=delivery, path="/webhooks")
    again = await deliver(client, body, delivery_id=delivery)

    assert first.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert "/webhooks/{forge}" not in (await client.get("/openapi.json")).json()["paths"]


async def test_delivery_without_an_id_gets_a_body_digest_so_a_resend_dedups(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(9))
    headers = {"content-type": "application/json", "x-gitea-event-type": "push"}
    headers["x-gitea-signature"] = hex_hmac(SECRET, body)

    first = await client.post("/webhook/gitea", content=body, headers=headers)
    await client.post(f"/jobs/{first.json()['job_id']}/cancel", headers=WRITE)
    again = await client.post("/webhook/gitea", content=body, headers=headers)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["duplicate"] == "delivery"
    job = (await client.get(f"/jobs/{first.json()['job_id']}", headers=READ)).json()
    assert job["delivery_id"].startswith("body-")
    assert await job_ids(raw_redis, prefix) == {first.json()["job_id"]}
