"""GET /events against a real server and Redis: every job's statuses, several jobs' logs, resume."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

from httpx_sse import ServerSentEvent

from tests.support.live_logs import (
    CLAIM_NOTE,
    READ,
    WRITE,
    Held,
    LiveServer,
    events_sse,
    read_events,
    read_until_end,
)
from tests.support.polling import eventually

STREAM = {"Accept": "text/event-stream"}


def data(event: ServerSentEvent) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(event.data)
    return loaded


async def until_ready(events: AsyncIterator[ServerSentEvent]) -> list[ServerSentEvent]:
    """The events up to and including `ready` (the history, when there is one)."""
    received: list[ServerSentEvent] = []
    while not received or received[-1].event != "ready":
        received += await read_events(events, 1)
    return received


async def create_job(server: LiveServer, repo: str = "acme/widgets", branch: str = "main") -> str:
    body = {"repo": repo, "clone_url": "https://git.example.test/a/w.git", "branch": branch}
    created = await server.http.post("/jobs", json=body, headers=WRITE)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_every_job_s_creation_and_status_changes_come_with_its_id(
    server: LiveServer,
) -> None:
    async with events_sse(server.http) as events:
        await until_ready(events)
        held = await server.claimed_job()
        await server.cancel(held.id)
        received = await read_events(events, 3)
    assert [e.event for e in received] == ["status", "status", "status"]
    assert [data(e)["status"] for e in received] == ["pending", "running", "cancelled"]
    assert {data(e)["job_id"] for e in received} == {held.id}
    assert all(data(e)["id"] == held.id for e in received)
    assert all(e.id for e in received)


async def test_filters_keep_only_matching_jobs(server: LiveServer) -> None:
    params = {"repo": "acme/other", "status": "pending,cancelled"}
    async with events_sse(server.http, params) as events:
        await until_ready(events)
        await create_job(server, repo="acme/widgets")
        wanted = await create_job(server, repo="acme/other", branch="dev")
        await server.cancel(wanted)
        received = await read_events(events, 2)
    assert [(data(e)["job_id"], data(e)["status"]) for e in received] == [
        (wanted, "pending"),
        (wanted, "cancelled"),
    ]


async def test_resuming_the_status_stream_gets_exactly_what_came_after(server: LiveServer) -> None:
    async with events_sse(server.http) as events:
        await until_ready(events)
        ids = [await create_job(server, branch=f"b{i}") for i in range(4)]
        received = await read_events(events, 4)
    assert [data(e)["job_id"] for e in received] == ids
    later = [await create_job(server, branch=f"c{i}") for i in range(2)]
    headers = {"Last-Event-ID": str(received[1].id)}
    async with events_sse(server.http, headers=headers) as events:
        resumed = await read_events(events, 5)
    assert [e.event for e in resumed] == ["status"] * 4 + ["ready"]
    assert [data(e)["job_id"] for e in resumed[:4]] == ids[2:] + later
    assert resumed[4].id == resumed[3].id


async def two_jobs_with_logs(server: LiveServer) -> tuple[Held, Held]:
    first = await server.claimed_job()
    second = await server.claimed_job_of("acme/second")
    await server.send_logs(first, ["a1", "a2"])
    await server.send_logs(second, ["b1"])
    await server.send_logs(first, ["a3"])
    return first, second


def lines_by_job(events: list[ServerSentEvent]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for event in events:
        if event.event == "log":
            found.setdefault(str(data(event)["job_id"]), []).append(str(data(event)["line"]))
    return found


async def test_several_jobs_logs_and_statuses_on_one_stream_until_both_end(
    server: LiveServer,
) -> None:
    first, second = await two_jobs_with_logs(server)
    params = {"jobs": f"{first.id},{second.id}"}
    async with events_sse(server.http, params) as events:
        received = await until_ready(events)
        await server.send_logs(second, ["b2"])
        await server.complete(second)
        await server.send_logs(first, ["a4"])
        await server.complete(first, "failed")
        received += await read_until_end(events)
    assert lines_by_job(received) == {
        first.id: [CLAIM_NOTE, "a1", "a2", "a3", "a4"],
        second.id: [CLAIM_NOTE, "b1", "b2"],
    }
    end = json.loads(received[-1].data)
    assert end["job_id"] is None
    assert [job["status"] for job in end["jobs"]] == ["failed", "success"]
    # every event's id is the vector of both jobs' last entries, in the order of `jobs`
    vectors = [str(e.id).split(",") for e in received if e.event in ("log", "status")]
    assert all(len(v) == 2 for v in vectors)
    assert vectors[-1] == [
        (await server.entry_ids(first.id))[-1],
        (await server.entry_ids(second.id))[-1],
    ]


async def test_resuming_several_jobs_with_the_vector_misses_and_repeats_nothing(
    server: LiveServer,
) -> None:
    first, second = await two_jobs_with_logs(server)
    params = {"jobs": f"{first.id},{second.id}"}
    async with events_sse(server.http, params) as events:
        received = await read_events(events, 6)
    cut = received[3]  # somewhere in the middle of the history
    seen = lines_by_job(received[:4])
    await server.send_logs(second, ["b2"])
    await server.complete(first)
    await server.complete(second)
    async with events_sse(server.http, params, headers={"Last-Event-ID": str(cut.id)}) as events:
        rest = await read_until_end(events)
    after = lines_by_job(rest)
    assert seen.get(first.id, []) + after.get(first.id, []) == [CLAIM_NOTE, "a1", "a2", "a3"]
    assert seen.get(second.id, []) + after.get(second.id, []) == [CLAIM_NOTE, "b1", "b2"]


async def test_bad_jobs_streams_are_refused_before_streaming(server: LiveServer) -> None:
    job = await create_job(server)
    unknown = str(uuid.uuid4())
    cases = [
        ({"jobs": f"{job},{unknown}"}, {}, 404),
        ({"jobs": "not-a-uuid"}, {}, 400),
        ({"jobs": ",".join(str(uuid.uuid4()) for _ in range(51))}, {}, 400),
        ({"jobs": job, "repo": "acme/widgets"}, {}, 400),
        ({"jobs": job}, {"Last-Event-ID": "1-0,2-0"}, 400),
        ({"status": "bogus"}, {}, 400),
        ({}, {"Last-Event-ID": "nope"}, 400),
    ]
    for params, headers, status in cases:
        response = await server.http.get("/events", params=params, headers=READ | STREAM | headers)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]


async def test_events_answer_only_clients_that_accept_a_stream(server: LiveServer) -> None:
    response = await server.http.get("/events", headers=READ)
    assert response.status_code == 406
    assert response.json()["error"] == "not_acceptable"


async def test_a_status_stream_costs_no_connection_per_client(server: LiveServer) -> None:
    before = len(await server.redis.client_list())
    async with events_sse(server.http) as one, events_sse(server.http) as two:
        await until_ready(one)
        await until_ready(two)
        await eventually(lambda: server.fanout.subscriber_count() == 2, what="2 clients")
        during = len(await server.redis.client_list())
    assert during - before <= 1  # the shared reader, if it was not reading yet
