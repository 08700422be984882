"""`POST /agent/claim` (empty, handed out, long-poll), `GET /agents` and `GET /queue`."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from starlette.types import Message

from raibid_api.domain.jobs import format_time
from tests.support.agent_protocol import (
    AGENT,
    AGENT_TOKEN,
    LEASE_SECONDS,
    READ,
    ProtocolApp,
    assert_error,
)

WAKE_BUDGET = 0.5  # far above a blocked XREADGROUP's wake-up, far below the 10 s the poll may wait


async def claim_and_leave(api: ProtocolApp, agent_id: str, wait: float) -> list[Message]:
    """A long-poll claim whose client is gone as soon as its body was sent; what the app sent.

    Called straight through ASGI, so the app's `is_disconnected` sees the client leave, as it
    does under uvicorn when an agent's connection drops.
    """
    body = json.dumps({"agent_id": agent_id, "wait": wait}).encode()
    requests = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return requests.pop() if requests else {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/agent/claim", "raw_path": b"/agent/claim",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
        "server": ("raibid.test", 80),
        "headers": [(b"authorization", f"Bearer {AGENT_TOKEN}".encode()),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    await api.app(scope, receive, send)
    return sent


async def test_claim_without_wait_answers_204_when_no_job_waits(api: ProtocolApp) -> None:
    response = await api.claim_response(wait=0)

    assert response.status_code == 204
    assert response.content == b""


async def test_claim_hands_out_the_pending_job_with_a_token_and_a_lease(api: ProtocolApp) -> None:
    job = await api.trigger()

    response = await api.claim_response("agent-1")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"job", "token", "lease_expires_at", "lease_seconds", "log_offset"}
    assert body["job"]["id"] == job["id"]
    assert body["job"]["status"] == "running"
    assert body["job"]["agent_id"] == "agent-1"
    assert body["job"]["attempt"] == 1
    assert body["job"]["started_at"] == format_time(api.clock.now_ms())
    assert len(body["token"]) >= 32
    assert body["lease_expires_at"] == format_time(api.clock.now_ms() + LEASE_SECONDS * 1000)
    assert body["lease_seconds"] == LEASE_SECONDS
    assert body["log_offset"] == 0
    assert (await api.job(job["id"]))["status"] == "running"
    assert await api.statuses(job["id"]) == ["running"]
    # the entry stays in the stream while the job is held, so XLEN counts it (KEDA's lag)
    assert await api.queue_length() == 1


async def test_a_job_is_handed_to_one_agent_only(api: ProtocolApp) -> None:
    await api.trigger()

    first = await api.claim_response("agent-1")
    second = await api.claim_response("agent-2")

    assert first.status_code == 200
    assert second.status_code == 204


async def test_a_job_cancelled_while_waiting_is_never_handed_out(api: ProtocolApp) -> None:
    job = await api.trigger()
    await api.cancel(job["id"])

    response = await api.claim_response("agent-1")

    assert response.status_code == 204
    assert await api.queue_length() == 0
    assert (await api.job(job["id"]))["status"] == "cancelled"


async def test_jobs_are_handed_out_oldest_first(api: ProtocolApp) -> None:
    older = await api.trigger("one")
    api.clock.advance(1)
    newer = await api.trigger("two")

    assert (await api.claim("agent-1")).id == older["id"]
    assert (await api.claim("agent-2")).id == newer["id"]


async def test_long_poll_wakes_when_a_job_is_triggered_during_the_wait(api: ProtocolApp) -> None:
    waiting = asyncio.create_task(api.claim_response("agent-1", wait=10))
    await api.until_a_claim_waits()

    triggered_at = time.monotonic()
    job = await api.trigger()
    response = await asyncio.wait_for(waiting, timeout=WAKE_BUDGET)

    assert time.monotonic() - triggered_at < WAKE_BUDGET
    assert response.status_code == 200, response.text
    assert response.json()["job"]["id"] == job["id"]


async def test_a_claim_whose_agent_left_leaves_the_job_to_the_next_agent(api: ProtocolApp) -> None:
    leaving = asyncio.create_task(claim_and_leave(api, "agent-gone", wait=5))
    await api.until_a_claim_waits()

    job = await api.trigger()
    sent_to_no_one = await asyncio.wait_for(leaving, timeout=5)
    response = await api.claim_response("agent-2")

    starts = [m["status"] for m in sent_to_no_one if m["type"] == "http.response.start"]
    assert starts != [200], "the job was handed to a client that had left"
    assert response.status_code == 200, await api.job(job["id"])
    assert (response.json()["job"]["id"], response.json()["job"]["attempt"]) == (job["id"], 1)


async def test_long_poll_answers_204_once_its_wait_is_over(api: ProtocolApp) -> None:
    started = time.monotonic()

    response = await api.claim_response("agent-1", wait=0.3)

    assert response.status_code == 204
    assert time.monotonic() - started >= 0.3


async def test_agents_lists_each_agent_with_its_current_job(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim("agent-1")
    await api.claim_response("agent-2")

    response = await api.http.get("/agents", headers=READ)

    assert response.status_code == 200
    agents = {agent["agent_id"]: agent for agent in response.json()}
    assert agents == {
        "agent-1": {"agent_id": "agent-1", "labels": [], "job_id": held.id,
                    "last_seen": format_time(api.clock.now_ms())},
        "agent-2": {"agent_id": "agent-2", "labels": [], "job_id": None,
                    "last_seen": format_time(api.clock.now_ms())},
    }  # fmt: skip


async def test_agents_shows_the_last_heartbeat_and_drops_the_job_once_completed(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim("agent-1")
    api.clock.advance(7)
    await api.heartbeat(held)
    beat = format_time(api.clock.now_ms())

    seen = (await api.http.get("/agents", headers=READ)).json()
    api.clock.advance(1)
    assert (await api.complete(held)).status_code == 200
    after = (await api.http.get("/agents", headers=READ)).json()

    assert [(a["agent_id"], a["job_id"], a["last_seen"]) for a in seen] == [
        ("agent-1", held.id, beat)
    ]
    assert [(a["agent_id"], a["job_id"]) for a in after] == [("agent-1", None)]


async def test_agents_keeps_the_labels_an_agent_claims_with_while_it_holds_a_job(
    api: ProtocolApp,
) -> None:
    await api.trigger()
    await api.claim("agent-1", labels=["arm64", "docker"])

    agents = (await api.http.get("/agents", headers=READ)).json()

    assert [(a["agent_id"], a["labels"]) for a in agents] == [("agent-1", ["arm64", "docker"])]


async def test_queue_reports_depth_claimed_and_the_oldest_wait(api: ProtocolApp) -> None:
    await api.trigger("one")
    api.clock.advance(5)
    second = await api.trigger("two")
    api.clock.advance(5)
    await api.trigger("three")
    await api.claim("agent-1")
    api.clock.advance(10)

    response = await api.http.get("/queue", headers=READ)

    assert response.status_code == 200
    assert response.json() == {"depth": 2, "claimed": 1, "oldest_waiting_seconds": 15.0}
    assert (await api.job(second["id"]))["status"] == "pending"


async def test_queue_of_an_idle_server_is_empty(api: ProtocolApp) -> None:
    response = await api.http.get("/queue", headers=READ)

    assert response.json() == {"depth": 0, "claimed": 0, "oldest_waiting_seconds": None}


@pytest.mark.parametrize("path", ["/agents", "/queue"])
async def test_agents_and_queue_need_the_read_scope(api: ProtocolApp, path: str) -> None:
    assert_error(await api.http.get(path), 401, "unauthenticated")
    assert_error(await api.http.get(path, headers=AGENT), 403, "forbidden")
