"""Stream tokens over HTTP: minted with a header, read as `?token=`; API tokens refused in URLs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from httpx_sse import ServerSentEvent, aconnect_sse

from tests.support.live_logs import (
    READ,
    READ_TOKEN,
    WRITE_TOKEN,
    LiveServer,
    read_events,
)

STREAM = {"Accept": "text/event-stream"}


async def test_a_log_token_opens_that_job_s_stream_without_a_header(server: LiveServer) -> None:
    held = await server.claimed_job()
    await server.send_logs(held, ["hello"])
    minted = await server.http.post(f"/jobs/{held.id}/logs/token", headers=READ)
    assert minted.status_code == 201, minted.text
    body = minted.json()
    assert body["job_id"] == held.id
    assert body["expires_at"].endswith("Z")
    url = f"/jobs/{held.id}/logs?token={body['token']}"
    async with aconnect_sse(server.http, "GET", url) as source:
        assert source.response.status_code == 200
        events = [e async for e in _first(source.aiter_sse(), 3)]
    assert [e.event for e in events if e.data][-1] == "log"
    text = await server.http.get(f"/jobs/{held.id}/logs", params={"token": body["token"]})
    assert text.status_code == 200
    assert "hello" in text.text
    events_url = f"/events?jobs={held.id}&token={body['token']}"
    async with aconnect_sse(server.http, "GET", events_url) as source:
        assert source.response.status_code == 200


async def _first(
    events: AsyncIterator[ServerSentEvent], count: int
) -> AsyncIterator[ServerSentEvent]:
    seen = 0
    async for event in events:
        if event.data:
            seen += 1
            yield event
            if seen == count:
                return


async def test_a_log_token_does_not_open_another_job(server: LiveServer) -> None:
    held = await server.claimed_job()
    other = await server.claimed_job_of("acme/other")
    token = (await server.http.post(f"/jobs/{held.id}/logs/token", headers=READ)).json()["token"]
    response = await server.http.get(f"/jobs/{other.id}/logs", params={"token": token})
    assert response.status_code == 403
    assert response.json()["error"] == "stream_token_scope"
    response = await server.http.get("/events", params={"token": token}, headers=STREAM)
    assert response.status_code == 403


async def test_api_tokens_in_urls_are_refused_even_with_a_header(server: LiveServer) -> None:
    held = await server.claimed_job()
    for token in (READ_TOKEN, WRITE_TOKEN):
        for path in (f"/jobs/{held.id}/logs", "/events"):
            response = await server.http.get(path, params={"token": token}, headers=READ | STREAM)
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "token_in_url"
            assert token not in response.text


async def test_garbage_tokens_are_refused_with_json(server: LiveServer) -> None:
    held = await server.claimed_job()
    response = await server.http.get(f"/jobs/{held.id}/logs", params={"token": "rst1.x.y"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_stream_token"


async def test_an_events_token_is_bound_to_its_filter(server: LiveServer) -> None:
    minted = await server.http.post(
        "/events/token", json={"repo": "acme/widgets", "status": ["running"]}, headers=READ
    )
    assert minted.status_code == 201, minted.text
    token = minted.json()["token"]
    assert minted.json()["filter"] == {
        "repo": "acme/widgets",
        "branch": None,
        "status": ["running"],
    }
    params = {"repo": "acme/widgets", "status": "running", "token": token}
    async with aconnect_sse(server.http, "GET", "/events", params=params) as source:
        assert source.response.status_code == 200
        [ready] = await read_events(_data_only(source.aiter_sse()), 1)
        assert ready.event == "ready"
    wider = await server.http.get(
        "/events", params={"repo": "acme/widgets", "token": token}, headers=STREAM
    )
    assert wider.status_code == 403


async def _data_only(
    events: AsyncIterator[ServerSentEvent],
) -> AsyncIterator[ServerSentEvent]:
    async for event in events:
        if event.data:
            yield event


async def test_minting_needs_read_scope_and_a_known_job(server: LiveServer) -> None:
    job = str(uuid.uuid4())
    assert (await server.http.post(f"/jobs/{job}/logs/token")).status_code == 401
    assert (await server.http.post(f"/jobs/{job}/logs/token", headers=READ)).status_code == 404
    bad = await server.http.post("/events/token", json={"jobs": [job]}, headers=READ)
    assert bad.status_code == 404
    mixed = await server.http.post(
        "/events/token", json={"jobs": [job], "repo": "a/b"}, headers=READ
    )
    assert mixed.status_code == 400
    extra = await server.http.post("/events/token", json={"nope": 1}, headers=READ)
    assert extra.status_code == 422
