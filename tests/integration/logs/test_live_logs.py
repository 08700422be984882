"""GET /jobs/{id}/logs over SSE against a real server and Redis: history, live, resume, end."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from httpx_sse import ServerSentEvent

from tests.support.live_logs import (
    CLAIM_NOTE,
    READ,
    STREAM_TIMEOUT,
    Held,
    LiveServer,
    ServerFactory,
    read_events,
    read_until_end,
    sse,
)
from tests.support.polling import eventually


def lines_of(events: list[ServerSentEvent]) -> list[str]:
    return [json.loads(e.data)["line"] for e in events if e.event == "log"]


async def write_slowly(server: LiveServer, held: Held, batches: int, size: int) -> None:
    """Append ``batches`` batches of log lines, letting readers in between, then end the job."""
    for batch in range(batches):
        await server.send_logs(held, [f"line {batch}.{i}" for i in range(size)])
        await asyncio.sleep(0)
    await server.complete(held)


async def subscribed(server: LiveServer, count: int) -> None:
    await eventually(lambda: server.fanout.subscriber_count() == count, what=f"{count} clients")


async def follow_to_end(server: LiveServer, job_id: str) -> list[ServerSentEvent]:
    async with sse(server.http, job_id) as events:
        return await read_until_end(events)


async def test_history_then_live_arrive_once_each_in_stream_order(server: LiveServer) -> None:
    held = await server.claimed_job()
    await server.send_logs(held, ["before 1", "before 2"])
    writer = asyncio.create_task(write_slowly(server, held, batches=40, size=5))
    # clients join while lines are being written, so each one crosses from history to live
    readers = []
    for _ in range(6):
        readers.append(asyncio.create_task(follow_to_end(server, held.id)))
        await asyncio.sleep(0.01)
    await writer
    stored = await server.entry_ids(held.id)
    for received in await asyncio.gather(*readers):
        assert [e.id for e in received[:-1]] == stored
        assert lines_of(received)[:3] == [CLAIM_NOTE, "before 1", "before 2"]
        assert len(lines_of(received)) == 3 + 40 * 5


async def test_stream_opens_with_retry_hint_and_no_buffering_headers(server: LiveServer) -> None:
    held = await server.claimed_job()
    headers = READ | {"Accept": "text/event-stream"}
    async with server.http.stream("GET", f"/jobs/{held.id}/logs", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        lines = response.aiter_lines()
        async with asyncio.timeout(STREAM_TIMEOUT):
            assert await anext(lines) == "retry: 3000"


async def test_status_events_carry_the_job_json_with_links(server: LiveServer) -> None:
    held = await server.claimed_job()
    async with sse(server.http, held.id) as events:
        note, first = await read_events(events, 2)
    job = json.loads(first.data)
    assert (note.event, json.loads(note.data)["line"]) == ("log", CLAIM_NOTE)
    assert first.event == "status"
    assert job["id"] == held.id
    assert job["status"] == "running"
    assert job["links"]["logs"].endswith(f"/jobs/{held.id}/logs")


async def test_log_events_carry_time_stream_and_line(server: LiveServer) -> None:
    held = await server.claimed_job()
    response = await server.http.post(
        f"/agent/jobs/{held.id}/logs",
        json={"lines": [{"line": "oops", "stream": "stderr"}]},
        headers={"Authorization": f"Bearer {held.token}"},
    )
    assert response.status_code == 200
    async with sse(server.http, held.id) as events:
        _, _, log = await read_events(events, 3)
    data = json.loads(log.data)
    assert log.event == "log"
    assert set(data) == {"t", "stream", "line", "n"}
    # line 1 is the server's note that the attempt started
    assert (data["stream"], data["line"], data["n"]) == ("stderr", "oops", 2)


@pytest.mark.parametrize("how", ["header", "query"])
async def test_resume_gets_exactly_the_entries_after_last_event_id(
    server: LiveServer, how: str
) -> None:
    held = await server.claimed_job()
    await server.send_logs(held, [f"old {i}" for i in range(10)])
    async with sse(server.http, held.id) as events:
        seen = await read_events(events, 6)
    await server.send_logs(held, [f"new {i}" for i in range(10)])
    await server.complete(held)
    last = seen[-1].id
    resume = {"headers": {"Last-Event-ID": last}} if how == "header" else {
        "params": {"last_event_id": last}
    }  # fmt: skip
    async with sse(server.http, held.id, **resume) as events:
        rest = await read_until_end(events)
    stored = await server.entry_ids(held.id)
    assert [e.id for e in seen] + [e.id for e in rest[:-1]] == stored


async def test_header_last_event_id_wins_over_a_stale_query(server: LiveServer) -> None:
    held = await server.claimed_job()
    await server.send_logs(held, ["a", "b", "c"])
    await server.complete(held)
    stored = await server.entry_ids(held.id)
    async with sse(
        server.http, held.id, headers={"Last-Event-ID": stored[2]},
        params={"last_event_id": stored[0]},
    ) as events:  # fmt: skip
        rest = await read_until_end(events)
    assert [e.id for e in rest[:-1]] == stored[3:]


async def test_terminal_status_is_followed_by_end_with_the_final_job(server: LiveServer) -> None:
    held = await server.claimed_job()
    async with sse(server.http, held.id) as events:
        await read_events(events, 2)  # the claim's line and the running status
        await server.send_logs(held, ["done soon"])
        await server.complete(held, "failed")
        received = await read_until_end(events)
    final = await server.http.get(f"/jobs/{held.id}", headers=READ)
    assert [e.event for e in received] == ["log", "status", "end"]
    assert json.loads(received[-2].data)["status"] == "failed"
    assert json.loads(received[-1].data) == final.json()
    # `end` carries no id of its own, so a reconnect resumes after the terminal status: `end` again
    assert received[-1].id == received[-2].id


async def test_finished_job_replays_its_log_then_ends(server: LiveServer) -> None:
    held = await server.claimed_job()
    await server.send_logs(held, ["one", "two"])
    await server.complete(held)
    received = await follow_to_end(server, held.id)
    assert lines_of(received) == [CLAIM_NOTE, "one", "two"]
    assert json.loads(received[-1].data)["status"] == "success"
    stored = await server.entry_ids(held.id)
    async with sse(server.http, held.id, headers={"Last-Event-ID": stored[-1]}) as events:
        assert [e.event for e in await read_until_end(events)] == ["end"]


async def test_resume_after_the_largest_possible_id_ends_at_once(server: LiveServer) -> None:
    held = await server.claimed_job()
    await server.complete(held)
    last = f"{2**64 - 1}-{2**64 - 1}"
    async with sse(server.http, held.id, headers={"Last-Event-ID": last}) as events:
        assert [e.event for e in await read_until_end(events)] == ["end"]


async def test_fifty_clients_of_one_job_share_one_redis_reader(server: LiveServer) -> None:
    held = await server.claimed_job()
    before = len(await server.redis.client_list())
    async with asyncio.TaskGroup() as clients:
        followers = []
        for count in range(1, 51):
            followers.append(clients.create_task(follow_to_end(server, held.id)))
            await subscribed(server, count)
        readers = await server.reader_connections()
        during = len(await server.redis.client_list())
        await server.send_logs(held, ["for everyone"])
        await server.complete(held)
    assert len(readers) == 1, readers
    assert during - before <= 3, (before, during)  # the reader, and a pooled connection or two
    for follower in followers:
        assert lines_of(follower.result()) == [CLAIM_NOTE, "for everyone"]


async def test_disconnected_client_is_dropped_at_once(server: LiveServer) -> None:
    held = await server.claimed_job()
    async with sse(server.http, held.id) as events:
        await read_events(events, 1)
        assert server.fanout.subscriber_count() == 1
        assert server.fanout.watched_jobs == {held.id}
    await eventually(lambda: server.fanout.subscriber_count() == 0, 2.0, "the client dropped")
    assert server.fanout.watched_jobs == frozenset()


async def test_idle_stream_sends_heartbeat_comments(start_server: ServerFactory) -> None:
    async with start_server(logs={"heartbeat": "0.05s"}) as server:
        held = await server.claimed_job()
        headers = READ | {"Accept": "text/event-stream"}
        url = f"/jobs/{held.id}/logs"
        async with server.http.stream("GET", url, headers=headers) as response:
            lines = response.aiter_lines()
            async with asyncio.timeout(STREAM_TIMEOUT):
                while await anext(lines) != ": heartbeat":
                    pass
                while await anext(lines) != ": heartbeat":
                    pass


async def test_unknown_job_answers_404_before_streaming(server: LiveServer) -> None:
    response = await server.http.get(
        f"/jobs/{uuid.uuid4()}/logs", headers=READ | {"Accept": "text/event-stream"}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "job_not_found"


@pytest.mark.parametrize(
    ("headers", "params"),
    [({"Last-Event-ID": "latest"}, {}), ({}, {"last_event_id": "12"})],
)
async def test_malformed_last_event_id_answers_400(
    server: LiveServer, headers: dict[str, str], params: dict[str, str]
) -> None:
    held = await server.claimed_job()
    response = await server.http.get(
        f"/jobs/{held.id}/logs",
        headers=READ | headers | {"Accept": "text/event-stream"},
        params=params,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_input"


async def test_json_and_text_answers_are_unchanged(server: LiveServer) -> None:
    held = await server.claimed_job()
    await server.send_logs(held, ["plain"])
    text = await server.http.get(f"/jobs/{held.id}/logs", headers=READ)
    assert text.text == f"{CLAIM_NOTE}\nplain\n"
    entries = await server.http.get(
        f"/jobs/{held.id}/logs", headers=READ | {"Accept": "application/json"}
    )
    assert [e["event"] for e in entries.json()] == ["log", "status", "log"]
