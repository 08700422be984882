"""``POST /webhook/{forge}/explain`` agrees with a real delivery, and writes nothing.

Each test sets a situation up through the API, asks explain about a delivery (comparing a dump
of every key of the test's prefix before and after), then sends the same delivery for real and
checks that what happened is what explain said: the answer, the kind of duplicate, the job made,
and which jobs were cancelled.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from raibid_api.storage.keys import Keys
from tests.support.aliases import SettingsFactory
from tests.support.api import ADMIN, READ, WRITE
from tests.support.keystate import assert_unchanged, key_state
from tests.support.webhook_app import serving
from tests.support.webhook_deliveries import (
    deliver,
    headers_for,
    new_id,
    pull_request_body,
    push_body,
    sha,
    tag_body,
)
from tests.support.webhook_expectations import CASES
from tests.support.webhook_samples import Forge, fixture_delivery


async def statuses(client: httpx.AsyncClient) -> dict[str, tuple[str, str | None]]:
    """Every job's status and reason."""
    answer = await client.get("/jobs", params={"limit": 200}, headers=READ)
    assert answer.status_code == 200, answer.text
    return {job["id"]: (job["status"], job["reason"]) for job in answer.json()["jobs"]}


async def settle(client: httpx.AsyncClient) -> None:
    """Have the journal write the entries it still holds (a listing does that first)."""
    assert (await client.get("/webhook/deliveries", headers=READ)).status_code == 200


async def claim(client: httpx.AsyncClient, expected: str) -> None:
    answer = await client.post(
        "/agent/claim", json={"agent_id": "a1", "labels": [], "wait": 0}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["job"]["id"] == expected


async def explain_then_deliver(
    client: httpx.AsyncClient,
    redis: Redis,
    prefix: str,
    body: bytes,
    headers: dict[str, str],
    forge: Forge = "gitea",
) -> dict[str, Any]:
    """Explain the delivery, then deliver it; assert they agree; return the verdict."""
    await settle(client)
    before = await key_state(redis, prefix)
    answer = await client.post(
        f"/webhook/{forge}/explain",
        json={"headers": headers, "payload": body.decode()},
        headers=WRITE,
    )
    assert_unchanged(before, await key_state(redis, prefix))
    assert answer.status_code == 200, answer.text
    verdict: dict[str, Any] = answer.json()

    jobs_before = await statuses(client)
    real = await client.post(f"/webhook/{forge}", content=body, headers=headers)
    jobs_after = await statuses(client)

    decision = verdict["decision"]
    if decision == "created":
        assert real.status_code == 202, real.text
        assert "duplicate" not in real.json()
        made = (await client.get(f"/jobs/{real.json()['job_id']}", headers=READ)).json()
        for field, value in verdict["job"].items():
            # stamped when made; the id of the request making it (the explain's, then the real's)
            if field not in ("created_at", "request_id"):
                assert made[field] == value, field
        assert made["request_id"] == real.headers["x-request-id"]
    elif decision == "duplicate":
        assert real.status_code == 200, real.text
        assert real.json()["duplicate"] == verdict["reason"]
        assert real.json()["job_id"] == verdict["duplicate_of"]
    elif decision in ("ignored", "filtered"):
        assert real.status_code == 200, real.text
        assert real.json()["ignored"] == verdict["reason"]
    else:
        assert decision == "rejected"
        assert real.status_code >= 400
        assert real.json()["error"] == verdict["reason"]
    changed = {job_id for job_id, was in jobs_before.items() if jobs_after[job_id] != was}
    assert changed == set(verdict["supersedes"])
    assert all(jobs_after[job_id] == ("cancelled", "superseded") for job_id in changed)
    return verdict


async def test_a_new_push_is_created(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    headers, body = fixture_delivery("gitea", "gitea/push-3.json")

    verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers)

    assert verdict["decision"] == "created"
    assert verdict["supersedes"] == []
    assert verdict["supersede_cancel"] is None


@pytest.mark.parametrize(("forge", "name"), CASES, ids=[f"{f}:{n}" for f, n in CASES])
async def test_every_recorded_delivery_is_explained_as_it_is_handled(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str, forge: Forge, name: str
) -> None:
    headers, body = fixture_delivery(forge, name)

    verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers, forge)

    assert verdict["decision"] in ("created", "ignored", "filtered")


async def test_a_redelivery_is_a_duplicate_of_its_delivery(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    headers, body = fixture_delivery("gitea", "gitea/push-3.json")
    made = (await client.post("/webhook/gitea", content=body, headers=headers)).json()

    verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers)

    assert (verdict["decision"], verdict["reason"]) == ("duplicate", "delivery")
    assert verdict["duplicate_of"] == made["job_id"]


async def test_the_same_content_is_a_duplicate_while_its_job_is_pending(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(1))
    made = (await deliver(client, body)).json()["job_id"]

    verdict = await explain_then_deliver(
        client, raw_redis, prefix, body, headers_for(body, delivery_id=new_id())
    )

    assert (verdict["decision"], verdict["reason"]) == ("duplicate", "content")
    assert verdict["duplicate_of"] == made


async def test_the_same_content_is_a_duplicate_while_its_job_is_running(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(1))
    made = (await deliver(client, body)).json()["job_id"]
    await claim(client, made)

    verdict = await explain_then_deliver(
        client, raw_redis, prefix, body, headers_for(body, delivery_id=new_id())
    )

    assert (verdict["decision"], verdict["reason"]) == ("duplicate", "content")
    assert verdict["duplicate_of"] == made


async def test_the_same_content_makes_a_new_job_once_its_job_ended(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    body = push_body(sha(1))
    made = (await deliver(client, body)).json()["job_id"]
    cancelled = await client.post(f"/jobs/{made}/cancel", headers=WRITE)
    assert cancelled.status_code == 200, cancelled.text

    verdict = await explain_then_deliver(
        client, raw_redis, prefix, body, headers_for(body, delivery_id=new_id())
    )

    assert verdict["decision"] == "created"
    assert verdict["supersedes"] == []


async def test_a_newer_push_supersedes_the_pending_job_of_its_branch(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    old = (await deliver(client, push_body(sha(1)))).json()["job_id"]
    body = push_body(sha(2))

    verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers_for(body))

    assert verdict["decision"] == "created"
    assert verdict["supersedes"] == [old]
    assert verdict["supersede_cancel"] == "create_step"


async def test_a_running_job_is_not_superseded_without_auto_cancel_running(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    old = (await deliver(client, push_body(sha(1)))).json()["job_id"]
    await claim(client, old)
    body = push_body(sha(2))

    verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers_for(body))

    assert verdict["decision"] == "created"
    assert verdict["supersedes"] == []
    assert (await statuses(client))[old] == ("running", None)


async def test_a_running_job_is_superseded_after_the_step_with_auto_cancel_running(
    settings_for: SettingsFactory, raw_redis: Redis, prefix: str
) -> None:
    async with serving(settings_for(auto_cancel_running=True)) as client:
        old = (await deliver(client, push_body(sha(1)))).json()["job_id"]
        await claim(client, old)
        body = push_body(sha(2))

        verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers_for(body))

    assert verdict["decision"] == "created"
    assert verdict["supersedes"] == [old]
    assert verdict["supersede_cancel"] == "after_create"


async def test_a_push_to_an_exempt_branch_supersedes_nothing(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    old = (await deliver(client, push_body(sha(1), branch="main"))).json()["job_id"]
    body = push_body(sha(2), branch="main")

    verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers_for(body))

    assert verdict["decision"] == "created"
    assert verdict["supersedes"] == []
    assert (await statuses(client))[old] == ("pending", None)


async def test_a_tag_supersedes_nothing(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    await deliver(client, tag_body("v1.0", sha(1)))
    await deliver(client, push_body(sha(2)))
    body = tag_body("v1.1", sha(3))

    verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers_for(body))

    assert verdict["decision"] == "created"
    assert verdict["job"]["tag"] == "v1.1"
    assert verdict["supersedes"] == []


async def test_a_pull_request_update_supersedes_its_older_job(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    event = "pull_request_sync"
    old = (await deliver(client, pull_request_body(2, sha(1)), event=event)).json()["job_id"]
    await deliver(client, pull_request_body(3, sha(2)), event=event)
    body = pull_request_body(2, sha(3))

    verdict = await explain_then_deliver(
        client, raw_redis, prefix, body, headers_for(body, event=event)
    )

    assert verdict["decision"] == "created"
    assert verdict["job"]["pull_request"] == 2
    assert verdict["supersedes"] == [old]


async def test_a_full_repository_window_is_told_without_counting(
    settings_for: SettingsFactory, raw_redis: Redis, prefix: str
) -> None:
    async with serving(settings_for(rate_limit_per_minute=2)) as client:
        await deliver(client, push_body(sha(1), branch="one"))
        await deliver(client, push_body(sha(2), branch="two"))
        body = push_body(sha(3), branch="three")

        verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers_for(body))

    assert (verdict["decision"], verdict["reason"]) == ("rejected", "rate_limited")
    assert "repo" in verdict["detail"]


async def test_a_job_whose_line_has_a_newer_job_already_is_cancelled_at_once(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    # another replica, its clock far ahead, made the newest job of the line
    line = Keys(prefix).latest_job("acme/widgets", "branch:feature")
    await raw_redis.set(line, f"{2**50} job-of-another-replica")
    body = push_body(sha(1))

    verdict = await explain_then_deliver(client, raw_redis, prefix, body, headers_for(body))
    made = (await client.get("/jobs", headers=READ)).json()["jobs"]

    assert verdict["decision"] == "created"
    assert (verdict["job"]["status"], verdict["job"]["reason"]) == ("cancelled", "superseded")
    assert "cancelled at once" in verdict["detail"]
    assert [(job["status"], job["reason"]) for job in made] == [("cancelled", "superseded")]
