"""The jobs API on its happy paths: trigger, read, list with filters and cursors, cancel, retry."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import httpx
import pytest
from redis.asyncio import Redis

from raibid_api.storage.keys import GROUP, Keys
from tests.support.api import (
    ADMIN,
    JOB_FIELDS,
    JSON,
    PUBLIC_URL,
    READ,
    WRITE,
    assert_error,
    trigger_body,
)
from tests.support.logs import LogEvents
from tests.support.polling import eventually

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA256_COMMIT = "ab" * 32
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

Job = dict[str, Any]


async def trigger(client: httpx.AsyncClient, **overrides: object) -> Job:
    response = await client.post("/jobs", headers=WRITE, json=trigger_body(**overrides))
    assert response.status_code == 201, response.text
    job: Job = response.json()
    return job


async def listing(client: httpx.AsyncClient, **params: str | int) -> dict[str, Any]:
    response = await client.get("/jobs", headers=READ, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def ids(page: dict[str, Any]) -> list[str]:
    return [job["id"] for job in page["jobs"]]


def created_ms(job: Job) -> int:
    stamp = datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))
    return round(stamp.timestamp() * 1000)


async def wait_for_next_ms(job: Job) -> None:
    """Wait until the wall clock has left the millisecond ``job`` was created in."""
    await eventually(
        lambda: time.time_ns() // 1_000_000 > created_ms(job), 1.0, "the next millisecond"
    )


async def test_trigger_answers_201_with_every_job_field_and_links(
    client: httpx.AsyncClient,
) -> None:
    before_ms = time.time_ns() // 1_000_000
    response = await client.post(
        "/jobs", headers=WRITE, json=trigger_body(branch="feature/x", commit=COMMIT)
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert set(job) == JOB_FIELDS
    assert str(uuid.UUID(job["id"])) == job["id"]
    assert job | {"id": None, "created_at": None} == {
        "id": None,
        "status": "pending",
        "repo": "acme/widgets",
        "clone_url": "https://git.example.test/acme/widgets.git",
        "ref": "refs/heads/feature/x",
        "branch": "feature/x",
        "tag": None,
        "commit": COMMIT,
        "event": "manual",
        "forge": None,
        "delivery_id": None,
        "pull_request": None,
        "author": None,
        "pusher": "writer",
        "message": None,
        "created_at": None,
        "started_at": None,
        "finished_at": None,
        "duration": None,
        "exit_code": None,
        "agent_id": None,
        "attempt": 1,
        "retry_of": None,
        "reason": None,
        "request_id": response.headers["x-request-id"],
        "links": {
            "self": f"{PUBLIC_URL}/jobs/{job['id']}",
            "logs": f"{PUBLIC_URL}/jobs/{job['id']}/logs",
            "web": f"{PUBLIC_URL}/ui/jobs/{job['id']}",
        },
    }
    assert RFC3339_UTC.match(job["created_at"])
    assert before_ms <= created_ms(job) <= time.time_ns() // 1_000_000


async def test_triggered_job_is_queued_for_the_agents(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    job = await trigger(client)
    keys = Keys(prefix)
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await raw_redis.xrange(keys.queue))
    assert [fields[b"job_id"].decode() for _, fields in entries] == [job["id"]]
    queued = json.loads(entries[0][1][b"job"])
    assert queued["id"] == job["id"]
    assert queued["status"] == "pending"
    groups = await raw_redis.xinfo_groups(keys.queue)
    assert [group["name"].decode() for group in groups] == [GROUP]


@pytest.mark.parametrize(
    ("overrides", "ref", "branch"),
    [
        pytest.param({"branch": None, "commit": COMMIT}, None, None, id="commit-only"),
        pytest.param({"branch": None, "commit": SHA256_COMMIT}, None, None, id="sha256-commit"),
        pytest.param(
            {"branch": "release/1.x"}, "refs/heads/release/1.x", "release/1.x", id="branch"
        ),
    ],
)
async def test_trigger_accepts_a_branch_or_a_commit(
    client: httpx.AsyncClient, overrides: dict[str, object], ref: str | None, branch: str | None
) -> None:
    job = await trigger(client, **overrides)
    assert (job["ref"], job["branch"]) == (ref, branch)
    assert job["commit"] == overrides.get("commit")


@pytest.mark.parametrize(
    "clone_url",
    [
        "https://git.example.test/acme/widgets.git",
        "http://git.example.test/acme/widgets.git",
        "ssh://git@git.example.test:2222/acme/widgets.git",
        "git@git.example.test:acme/widgets.git",
        "git://git.example.test/acme/widgets.git",
        "file:///srv/git/acme/widgets.git",
    ],
)
async def test_trigger_accepts_every_url_git_clones(
    client: httpx.AsyncClient, clone_url: str
) -> None:
    job = await trigger(client, clone_url=clone_url)
    assert job["clone_url"] == clone_url


async def test_manual_triggers_of_the_same_commit_are_never_coalesced(
    client: httpx.AsyncClient,
) -> None:
    first = await trigger(client, commit=COMMIT)
    second = await trigger(client, commit=COMMIT)
    assert first["id"] != second["id"]
    assert (await listing(client))["total"] == 2


async def test_get_returns_the_job_as_triggered(client: httpx.AsyncClient) -> None:
    job = await trigger(client, commit=COMMIT)
    response = await client.get(f"/jobs/{job['id']}", headers=READ)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == job


async def test_get_accepts_the_id_in_upper_case(client: httpx.AsyncClient) -> None:
    job = await trigger(client)
    response = await client.get(f"/jobs/{job['id'].upper()}", headers=READ)
    assert response.status_code == 200
    assert response.json()["id"] == job["id"]


async def test_token_stored_as_sha256_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", headers=ADMIN, json=trigger_body())
    assert response.status_code == 201
    assert response.json()["pusher"] == "admin"


async def test_list_is_newest_first_with_total(client: httpx.AsyncClient) -> None:
    created = []
    for _ in range(3):
        created.append(await trigger(client))
        await wait_for_next_ms(created[-1])
    page = await listing(client)
    assert ids(page) == [job["id"] for job in reversed(created)]
    assert page["jobs"] == list(reversed(created))
    assert page["total"] == 3
    assert page["next_cursor"] is None


async def test_list_of_an_empty_deployment_is_empty(client: httpx.AsyncClient) -> None:
    assert await listing(client) == {"jobs": [], "next_cursor": None, "total": 0}


@pytest.fixture
async def mixed_jobs(client: httpx.AsyncClient) -> dict[str, Job]:
    """Five jobs that differ in repo, branch, status and event, created in this order."""
    jobs: dict[str, Job] = {}
    jobs["widgets_main"] = await trigger(client)
    jobs["widgets_dev"] = await trigger(client, branch="dev")
    jobs["gadgets_main"] = await trigger(
        client, repo="acme/gadgets", clone_url="https://git.example.test/acme/gadgets.git"
    )
    cancelled = await client.post(f"/jobs/{jobs['widgets_dev']['id']}/cancel", headers=WRITE)
    assert cancelled.status_code == 200
    jobs["widgets_dev"] = cancelled.json()
    retried = await client.post(f"/jobs/{jobs['widgets_dev']['id']}/retry", headers=WRITE)
    assert retried.status_code == 201
    jobs["widgets_dev_retry"] = retried.json()
    jobs["gadgets_sha"] = await trigger(
        client,
        repo="acme/gadgets",
        clone_url="https://git.example.test/acme/gadgets.git",
        branch=None,
        commit=COMMIT,
    )
    return jobs


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"status": "pending"},
                     {"widgets_main", "gadgets_main", "widgets_dev_retry", "gadgets_sha"},
                     id="status-pending"),
        pytest.param({"status": "cancelled"}, {"widgets_dev"}, id="status-cancelled"),
        pytest.param({"status": "running"}, set(), id="status-running"),
        pytest.param({"repo": "acme/gadgets"}, {"gadgets_main", "gadgets_sha"}, id="repo"),
        pytest.param({"repo": "acme/none"}, set(), id="repo-unknown"),
        pytest.param({"branch": "dev"}, {"widgets_dev", "widgets_dev_retry"}, id="branch"),
        pytest.param({"event": "retry"}, {"widgets_dev_retry"}, id="event-retry"),
        pytest.param({"event": "manual"},
                     {"widgets_main", "widgets_dev", "gadgets_main", "gadgets_sha"},
                     id="event-manual"),
        pytest.param({"event": "push"}, set(), id="event-push"),
        pytest.param({"repo": "acme/widgets", "status": "pending", "branch": "main"},
                     {"widgets_main"}, id="repo-status-branch"),
        pytest.param({"repo": "acme/widgets", "event": "retry", "status": "pending"},
                     {"widgets_dev_retry"}, id="repo-event-status"),
    ],
)  # fmt: skip
async def test_list_filters_narrow_to_matching_jobs(
    client: httpx.AsyncClient,
    mixed_jobs: dict[str, Job],
    params: dict[str, str],
    expected: set[str],
) -> None:
    page = await listing(client, **params)
    by_id = {job["id"]: name for name, job in mixed_jobs.items()}
    assert {by_id[job_id] for job_id in ids(page)} == expected
    assert page["total"] == len(expected)
    scores = [created_ms(job) for job in page["jobs"]]
    assert scores == sorted(scores, reverse=True)
    for job in page["jobs"]:
        assert job == mixed_jobs[by_id[job["id"]]]


async def test_list_since_keeps_jobs_created_at_or_after_it(client: httpx.AsyncClient) -> None:
    old = await trigger(client)
    await wait_for_next_ms(old)
    new = await trigger(client)
    since = datetime.fromisoformat(new["created_at"].replace("Z", "+00:00"))
    page = await listing(client, since=new["created_at"])
    assert ids(page) == [new["id"]]
    assert page["total"] == 1
    # the same instant written with another offset names the same jobs
    tokyo = since.astimezone(timezone(timedelta(hours=9))).isoformat()
    assert ids(await listing(client, since=tokyo)) == [new["id"]]
    # without an offset, the time is read as UTC
    naive = new["created_at"].removesuffix("Z")
    assert ids(await listing(client, since=naive)) == [new["id"]]
    before_old = (since - timedelta(hours=1)).isoformat()
    assert ids(await listing(client, since=before_old)) == [new["id"], old["id"]]


async def test_list_since_combines_with_other_filters(client: httpx.AsyncClient) -> None:
    old = await trigger(client, branch="dev")
    await wait_for_next_ms(old)
    await trigger(client, branch="main")
    new_dev = await trigger(client, branch="dev")
    page = await listing(client, branch="dev", since=new_dev["created_at"])
    assert ids(page) == [new_dev["id"]]
    assert page["total"] == 1


async def collect_pages(
    client: httpx.AsyncClient, limit: int, **params: str
) -> tuple[list[str], list[dict[str, Any]]]:
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        after = {"cursor": cursor} if cursor else {}
        page = await listing(client, limit=limit, **params, **after)
        pages.append(page)
        seen += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages
        assert len(pages) < 50, "pagination does not end"


async def test_cursor_walks_every_job_once_newest_first(client: httpx.AsyncClient) -> None:
    created = []
    for _ in range(5):
        created.append(await trigger(client))
        await wait_for_next_ms(created[-1])
    seen, pages = await collect_pages(client, limit=2)
    assert seen == [job["id"] for job in reversed(created)]
    assert [len(page["jobs"]) for page in pages] == [2, 2, 1]
    assert all(page["total"] == 5 for page in pages)


async def test_cursor_of_a_full_last_page_ends_the_walk(client: httpx.AsyncClient) -> None:
    for _ in range(4):
        await trigger(client)
    seen, pages = await collect_pages(client, limit=2)
    assert len(set(seen)) == 4
    assert [len(page["jobs"]) for page in pages] == [2, 2]


async def test_cursor_neither_repeats_nor_skips_while_jobs_arrive(
    client: httpx.AsyncClient,
) -> None:
    created = []
    for _ in range(5):
        created.append(await trigger(client))
        await wait_for_next_ms(created[-1])
    first = await listing(client, limit=2)
    arrived = [await trigger(client), await trigger(client)]
    seen = ids(first)
    cursor = first["next_cursor"]
    while cursor is not None:
        page = await listing(client, limit=2, cursor=cursor)
        assert page["total"] == 7
        seen += ids(page)
        cursor = page["next_cursor"]
    assert seen == [job["id"] for job in reversed(created)]
    assert not {job["id"] for job in arrived} & set(seen)


async def test_cursor_walks_jobs_created_in_the_same_millisecond(
    client: httpx.AsyncClient,
) -> None:
    # created concurrently, many jobs share a creation score: the cursor must break the ties
    created = await asyncio.gather(*(trigger(client) for _ in range(12)))
    seen, _ = await collect_pages(client, limit=5)
    assert sorted(seen) == sorted(job["id"] for job in created)
    assert len(seen) == len(set(seen))


async def test_cursor_pages_a_filtered_listing(client: httpx.AsyncClient) -> None:
    for index in range(6):
        await trigger(client, branch="dev" if index % 2 else "main")
    seen, pages = await collect_pages(client, limit=2, branch="dev", status="pending")
    assert len(set(seen)) == 3
    assert all(page["total"] == 3 for page in pages)
    assert all(job["branch"] == "dev" for page in pages for job in page["jobs"])


@pytest.mark.parametrize("limit", [1, 200])
async def test_limit_bounds_are_accepted(client: httpx.AsyncClient, limit: int) -> None:
    for _ in range(2):
        await trigger(client)
    page = await listing(client, limit=limit)
    assert len(page["jobs"]) == min(limit, 2)
    assert (page["next_cursor"] is not None) == (limit == 1)


async def test_cancel_of_a_pending_job_ends_it_and_dequeues_it(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    job = await trigger(client)
    response = await client.post(f"/jobs/{job['id']}/cancel", headers=WRITE)
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["reason"] == "cancelled"
    assert RFC3339_UTC.match(cancelled["finished_at"])
    assert cancelled | {"status": "pending", "reason": None, "finished_at": None} == job
    assert (await client.get(f"/jobs/{job['id']}", headers=READ)).json() == cancelled
    assert await raw_redis.xlen(Keys(prefix).queue) == 0
    assert ids(await listing(client, status="cancelled")) == [job["id"]]
    assert ids(await listing(client, status="pending")) == []


async def test_cancel_records_the_reason_given(client: httpx.AsyncClient) -> None:
    job = await trigger(client)
    response = await client.post(
        f"/jobs/{job['id']}/cancel", headers=WRITE, json={"reason": "superseded"}
    )
    assert response.status_code == 200
    assert response.json()["reason"] == "superseded"


async def test_retry_of_a_cancelled_job_creates_a_new_job(client: httpx.AsyncClient) -> None:
    job = await trigger(client, commit=COMMIT)
    cancelled = (await client.post(f"/jobs/{job['id']}/cancel", headers=WRITE)).json()
    response = await client.post(f"/jobs/{job['id']}/retry", headers=ADMIN)
    assert response.status_code == 201, response.text
    retry = response.json()
    assert set(retry) == JOB_FIELDS
    assert retry["id"] != job["id"]
    assert retry["retry_of"] == job["id"]
    assert (retry["status"], retry["event"], retry["attempt"]) == ("pending", "retry", 1)
    assert retry["pusher"] == "admin"
    for field in ("repo", "clone_url", "ref", "branch", "tag", "commit", "pull_request"):
        assert retry[field] == job[field], field
    assert retry["finished_at"] is None
    assert retry["reason"] is None
    assert retry["links"]["self"] == f"{PUBLIC_URL}/jobs/{retry['id']}"
    assert (await client.get(f"/jobs/{job['id']}", headers=READ)).json() == cancelled
    assert (await client.get(f"/jobs/{retry['id']}", headers=READ)).json() == retry
    assert ids(await listing(client)) == [retry["id"], job["id"]]


async def test_a_retry_can_itself_be_retried(client: httpx.AsyncClient) -> None:
    job = await trigger(client)
    await client.post(f"/jobs/{job['id']}/cancel", headers=WRITE)
    retry = (await client.post(f"/jobs/{job['id']}/retry", headers=WRITE)).json()
    await client.post(f"/jobs/{retry['id']}/cancel", headers=WRITE)
    again = await client.post(f"/jobs/{retry['id']}/retry", headers=WRITE)
    assert again.status_code == 201
    assert again.json()["retry_of"] == retry["id"]


async def test_every_route_is_served_under_api_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/jobs", headers=WRITE, json=trigger_body())
    assert response.status_code == 201
    job = response.json()
    read = await client.get(f"/api/jobs/{job['id']}", headers=READ)
    assert read.status_code == 200
    assert read.json() == job
    page = await client.get("/api/jobs", headers=READ, params={"repo": "acme/widgets"})
    assert ids(page.json()) == [job["id"]]
    cancelled = await client.post(f"/api/jobs/{job['id']}/cancel", headers=WRITE, json={})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    retried = await client.post(f"/api/jobs/{job['id']}/retry", headers=WRITE)
    assert retried.status_code == 201
    assert retried.json()["retry_of"] == job["id"]
    # one store behind both: what /api wrote, /jobs reads
    assert set(ids(await listing(client))) == {job["id"], retried.json()["id"]}


async def test_api_prefix_answers_errors_in_the_same_shape(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/jobs/{uuid.uuid4()}", headers=READ)
    assert response.status_code == 404
    assert response.json()["error"] == "job_not_found"


async def test_request_id_given_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs", headers=READ | {"X-Request-ID": "trace-42.a:b_c"})
    assert response.headers["x-request-id"] == "trace-42.a:b_c"


async def test_request_id_is_generated_when_none_is_given(client: httpx.AsyncClient) -> None:
    first = await client.get("/jobs", headers=READ)
    second = await client.get("/jobs", headers=READ)
    assert first.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "given", ["has space", "x" * 129, "semi;colon", "<script>"], ids=["space", "long", ";", "<>"]
)
async def test_request_id_that_is_not_sane_is_replaced(
    client: httpx.AsyncClient, given: str
) -> None:
    response = await client.get("/jobs", headers=READ | {"X-Request-ID": given})
    assert response.headers["x-request-id"] not in ("", given)


async def test_request_id_is_in_the_error_body(client: httpx.AsyncClient) -> None:
    given = await client.get(f"/jobs/{uuid.uuid4()}", headers=READ | {"X-Request-ID": "req-1"})
    assert given.json()["request_id"] == "req-1"
    assert given.headers["x-request-id"] == "req-1"
    generated = await client.post("/jobs", headers=JSON, content=b"{}")
    assert generated.status_code == 401
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    assert generated.json()["request_id"]


async def test_request_id_is_in_every_log_line_of_the_request(
    client: httpx.AsyncClient, captured_logs: LogEvents
) -> None:
    await client.get(f"/jobs/{uuid.uuid4()}", headers=READ | {"X-Request-ID": "logged-1"})
    generated = (await client.post("/jobs", headers=WRITE, json=trigger_body())).headers
    lines = [event for event in captured_logs if event.get("request_id") == "logged-1"]
    assert [(line["event"], line["status"]) for line in lines] == [("request", 404)]
    lines = [e for e in captured_logs if e.get("request_id") == generated["x-request-id"]]
    assert [(line["event"], line["status"]) for line in lines] == [("request", 201)]
    assert all("request_id" in event for event in captured_logs), captured_logs


async def test_a_job_carries_the_request_id_of_the_request_that_made_it(
    client: httpx.AsyncClient, captured_logs: LogEvents
) -> None:
    made = await client.post(
        "/jobs", headers=WRITE | {"X-Request-ID": "made-1"}, json=trigger_body()
    )
    job = made.json()
    await client.post(f"/jobs/{job['id']}/cancel", headers=WRITE)
    retried = await client.post(f"/jobs/{job['id']}/retry", headers=WRITE)
    read = await client.get(f"/jobs/{job['id']}", headers=READ | {"X-Request-ID": "read-1"})

    assert job["request_id"] == "made-1"
    # a retry is a new job: it names the retry request, not the first job's
    assert retried.json()["request_id"] == retried.headers["x-request-id"] != "made-1"
    assert read.json()["request_id"] == "made-1"  # reading does not change it
    assert any(e.get("request_id") == "made-1" for e in captured_logs)


async def test_health_answers_without_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["healthy"]) == ("ok", True)
    assert body["uptime_seconds"] >= 0


async def test_ready_answers_200_while_redis_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"redis": "ok"}}


async def test_head_of_a_job_answers_its_headers_without_a_body(client: httpx.AsyncClient) -> None:
    job = (await client.post("/jobs", headers=WRITE, json=trigger_body())).json()
    got = await client.get(f"/jobs/{job['id']}", headers=READ)

    head = await client.head(f"/jobs/{job['id']}", headers=READ)

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["content-type"] == "application/json"


@pytest.mark.parametrize("base", ["", "/api"])
async def test_reading_a_job_refuses_like_every_other_route(
    client: httpx.AsyncClient, base: str
) -> None:
    unknown = await client.get(f"{base}/jobs/{uuid.uuid4()}", headers=READ)
    malformed = await client.get(f"{base}/jobs/not-a-uuid", headers=READ)
    anonymous = await client.get(f"{base}/jobs/{uuid.uuid4()}")

    assert_error(unknown, 404, "job_not_found")
    assert_error(malformed, 400, "invalid_job_id")
    assert_error(anonymous, 401, "unauthenticated")
    assert anonymous.headers["www-authenticate"] == "Bearer"
