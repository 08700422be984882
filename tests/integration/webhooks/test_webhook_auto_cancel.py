"""Auto-cancel: a newer push to a branch or pull request cancels the older jobs it supersedes."""

from __future__ import annotations

import asyncio

import httpx
from redis.asyncio import Redis

from tests.support.aliases import SettingsFactory
from tests.support.api import ADMIN, READ
from tests.support.webhook_app import serving
from tests.support.webhook_deliveries import deliver, pull_request_body, push_body, sha


async def job(client: httpx.AsyncClient, job_id: str) -> dict[str, object]:
    answer = await client.get(f"/jobs/{job_id}", headers=READ)
    assert answer.status_code == 200
    result: dict[str, object] = answer.json()
    return result


async def claim(client: httpx.AsyncClient) -> str:
    answer = await client.post(
        "/agent/claim", json={"agent_id": "a1", "labels": [], "wait": 0}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["job"]["id"])


async def test_new_push_cancels_the_older_pending_job_of_its_branch(
    client: httpx.AsyncClient,
) -> None:
    old = (await deliver(client, push_body(sha(1), branch="feature"))).json()["job_id"]
    other_branch = (await deliver(client, push_body(sha(2), branch="other"))).json()["job_id"]

    new = (await deliver(client, push_body(sha(3), branch="feature"))).json()["job_id"]

    cancelled = await job(client, old)
    assert cancelled["status"] == "cancelled"
    assert cancelled["reason"] == "superseded"
    assert (await job(client, other_branch))["status"] == "pending"
    assert (await job(client, new))["status"] == "pending"


async def test_push_to_an_exempt_branch_cancels_nothing(client: httpx.AsyncClient) -> None:
    old = (await deliver(client, push_body(sha(1), branch="main"))).json()["job_id"]

    await deliver(client, push_body(sha(2), branch="main"))

    assert (await job(client, old))["status"] == "pending"


async def test_same_branch_of_another_repository_is_not_superseded(
    client: httpx.AsyncClient,
) -> None:
    old = (await deliver(client, push_body(sha(1), repo="acme/one"))).json()["job_id"]

    await deliver(client, push_body(sha(2), repo="acme/two"))

    assert (await job(client, old))["status"] == "pending"


async def test_pull_request_update_cancels_the_older_job_of_that_pull_request_only(
    client: httpx.AsyncClient,
) -> None:
    old = (await deliver(client, pull_request_body(2, sha(1)), event="pull_request_sync")).json()
    other = (await deliver(client, pull_request_body(3, sha(2)), event="pull_request_sync")).json()

    await deliver(client, pull_request_body(2, sha(3)), event="pull_request_sync")

    assert (await job(client, old["job_id"]))["reason"] == "superseded"
    assert (await job(client, other["job_id"]))["status"] == "pending"


async def test_running_job_is_left_alone_unless_configured(client: httpx.AsyncClient) -> None:
    running = (await deliver(client, push_body(sha(1)))).json()["job_id"]
    assert await claim(client) == running

    await deliver(client, push_body(sha(2)))

    assert (await job(client, running))["status"] == "running"


async def test_running_job_is_cancelled_with_auto_cancel_running(
    settings_for: SettingsFactory, raw_redis: Redis
) -> None:
    async with serving(settings_for(auto_cancel_running=True)) as client:
        running = (await deliver(client, push_body(sha(1)))).json()["job_id"]
        assert await claim(client) == running

        await deliver(client, push_body(sha(2)))

        cancelled = await job(client, running)
        assert cancelled["status"] == "cancelled"
        assert cancelled["reason"] == "superseded"


async def test_auto_cancel_off_keeps_every_job(
    settings_for: SettingsFactory, raw_redis: Redis
) -> None:
    async with serving(settings_for(auto_cancel=False)) as client:
        old = (await deliver(client, push_body(sha(1)))).json()["job_id"]

        await deliver(client, push_body(sha(2)))

        assert (await job(client, old))["status"] == "pending"


async def test_tag_push_supersedes_nothing(client: httpx.AsyncClient) -> None:
    old = (await deliver(client, push_body(sha(1)))).json()["job_id"]
    tag = push_body(sha(2)).replace(b'"refs/heads/feature"', b'"refs/tags/v1"')

    answer = await deliver(client, tag)

    assert answer.status_code == 202
    assert (await job(client, answer.json()["job_id"]))["tag"] == "v1"
    assert (await job(client, old))["status"] == "pending"


async def test_concurrent_pushes_to_one_branch_leave_only_the_newest_job_pending(
    client: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(*(deliver(client, push_body(sha(n))) for n in range(20)))

    jobs = [await job(client, answer.json()["job_id"]) for answer in answers]
    newest = max(jobs, key=lambda found: (str(found["created_at"]), str(found["id"])))
    assert [found["id"] for found in jobs if found["status"] == "pending"] == [newest["id"]]
    assert {found["reason"] for found in jobs if found is not newest} == {"superseded"}
