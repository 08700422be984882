"""Live logs end to end: a real server process, an agent speaking the protocol, an SSE client
that disconnects mid-way and resumes with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import Generator

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from tests.support.http_agent import HttpAgent
from tests.support.server_process import OPERATOR, Server

pytestmark = pytest.mark.e2e

TIMEOUT = httpx.Timeout(10.0)


def claimed_job(http: httpx.Client) -> HttpAgent:
    """A new job, claimed by an agent speaking the protocol."""
    created = http.post(
        "/jobs",
        json={"repo": "acme/widgets", "clone_url": "https://git.example.test/a/w.git",
              "branch": "main"},
        headers=OPERATOR,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    agent = HttpAgent(http, OPERATOR)
    assert agent.job_id == created.json()["id"]
    return agent


def events_of(
    http: httpx.Client, job_id: str, last_id: str | None = None
) -> Generator[ServerSentEvent, None, None]:
    """The job's SSE events (the retry hint left out), resuming after ``last_id``."""
    headers = OPERATOR | ({"Last-Event-ID": last_id} if last_id else {})
    with connect_sse(http, "GET", f"/jobs/{job_id}/logs", headers=headers) as source:
        assert source.response.status_code == 200
        for event in source.iter_sse():
            if event.data:
                yield event


def line(event: ServerSentEvent) -> str:
    assert event.event == "log", event
    text: str = json.loads(event.data)["line"]
    return text


def test_client_resumes_with_last_event_id_and_sees_every_entry_once_then_end(
    server: Server,
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        agent = claimed_job(http)
        agent.log("cloning", "building")
        first = events_of(http, agent.job_id)
        seen = [next(first) for _ in range(4)]
        assert [e.event for e in seen] == ["log", "status", "log", "log"]
        agent.log("testing 1", "testing 2")  # live, while the client is connected
        seen += [next(first), next(first)]
        first.close()  # the client goes away mid-job
        agent.log("testing 3", "packaging")
        agent.complete()
        rest = list(events_of(http, agent.job_id, last_id=seen[-1].id))
        entries = http.get(
            f"/jobs/{agent.job_id}/logs", headers=OPERATOR | {"Accept": "application/json"}
        ).json()
    received = seen + rest
    assert [e.id for e in received[:-1]] == [entry["id"] for entry in entries]
    assert [line(e) for e in received if e.event == "log"] == [
        "[raibid] attempt 1 started on agent e2e-agent", "cloning", "building",
        "testing 1", "testing 2", "testing 3", "packaging",
    ]  # fmt: skip
    assert [e.event for e in rest] == ["log", "log", "status", "end"]
    assert json.loads(rest[-1].data)["status"] == "success"
    assert json.loads(rest[-1].data)["id"] == agent.job_id
