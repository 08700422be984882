"""How the live-log tests reach the app: a real uvicorn server in this process, and SSE readers.

`httpx.ASGITransport` buffers a whole response before handing it over, so a stream that never ends
would never arrive; these tests speak real HTTP to a real server on a free port instead, with the
app's state (its fan-out) at hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from httpx_sse import ServerSentEvent, aconnect_sse

from raibid_api.api.connections import ConnectionLimits, guarded_protocol
from raibid_api.api.deps import AppState
from raibid_api.app import create_app
from raibid_api.config import Settings
from raibid_api.embedded import free_port
from raibid_api.logs.fanout import LogFanout
from raibid_api.storage.keys import Keys
from tests.support.aliases import RawRedis
from tests.support.polling import eventually

READ_TOKEN = "reader-token-0123456789"
WRITE_TOKEN = "writer-token-0123456789"
AGENT_TOKEN = "agent-token-0123456789"
TOKENS: list[dict[str, Any]] = [
    {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
    {"name": "writer", "scopes": ["read", "write"], "value": WRITE_TOKEN},
    {"name": "agent", "scopes": ["agent"], "value": AGENT_TOKEN},
]
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
STREAM_TIMEOUT = 10.0


CLAIM_NOTE = "[raibid] attempt 1 started on agent agent-1"
"""The line the server writes before the `running` status when `claimed_job` claims a job."""


@dataclass(frozen=True)
class Held:
    """A job an agent claimed, with its job token."""

    id: str
    token: str


@dataclass
class LiveServer:
    """A running server, a client of it, and the Redis it writes to."""

    http: httpx.AsyncClient
    state: AppState
    redis: RawRedis
    keys: Keys

    @property
    def fanout(self) -> LogFanout:
        """The process's shared log reader."""
        return self.state.live_logs.fanout

    async def claimed_job(self) -> Held:
        """A new job, claimed by an agent."""
        body = {"repo": "acme/widgets", "clone_url": "https://git.example.test/a/w.git"}
        created = await self.http.post("/jobs", json=body | {"branch": "main"}, headers=WRITE)
        assert created.status_code == 201, created.text
        claim = await self.http.post(
            "/agent/claim", json={"agent_id": "agent-1", "wait": 0}, headers=AGENT
        )
        assert claim.status_code == 200, claim.text
        assert claim.json()["job"]["id"] == created.json()["id"]
        return Held(created.json()["id"], claim.json()["token"])

    async def send_logs(self, held: Held, lines: list[str]) -> None:
        """Append ``lines`` to the job's log as its agent does."""
        response = await self.http.post(
            f"/agent/jobs/{held.id}/logs", json={"lines": lines}, headers=_bearer(held.token)
        )
        assert response.status_code == 200, response.text

    async def complete(self, held: Held, status: str = "success") -> None:
        """End the job as its agent does."""
        body = {"status": status, "exit_code": 0 if status == "success" else 1}
        response = await self.http.post(
            f"/agent/jobs/{held.id}/complete", json=body, headers=_bearer(held.token)
        )
        assert response.status_code == 200, response.text

    async def entry_ids(self, job_id: str) -> list[str]:
        """Every entry id of the job's event stream, as Redis holds it."""
        return [entry_id for entry_id, _ in await self.redis.xrange(self.keys.events(job_id))]

    async def reader_connections(self) -> list[dict[str, str]]:
        """The server's connections that sit blocked in XREAD."""
        clients = await self.redis.client_list()
        return [c for c in clients if c["cmd"] == "xread" and "b" in c["flags"]]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def live_server(settings: Settings, redis: RawRedis, keys: Keys) -> AsyncIterator[LiveServer]:
    """``create_app(settings)`` served by uvicorn on a free loopback port until the block exits."""
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False,
        timeout_graceful_shutdown=2, http=guarded_protocol(ConnectionLimits.of(settings.server)),
    )  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or serving.done(), what="uvicorn to start")
    assert server.started, serving.exception()
    limits = httpx.Limits(max_connections=200)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=STREAM_TIMEOUT
        ) as http:
            yield LiveServer(http, app.state.raibid, redis, keys)
    finally:
        server.should_exit = True
        await serving


@asynccontextmanager
async def sse(
    http: httpx.AsyncClient, job_id: str, **kwargs: Any
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """The events of ``GET /jobs/{job_id}/logs`` over SSE, until the block exits."""
    headers = READ | kwargs.pop("headers", {})
    async with aconnect_sse(http, "GET", f"/jobs/{job_id}/logs", headers=headers, **kwargs) as src:
        assert src.response.status_code == 200, await src.response.aread()
        yield _without_retry_hints(src.aiter_sse())


async def _without_retry_hints(
    events: AsyncIterator[ServerSentEvent],
) -> AsyncIterator[ServerSentEvent]:
    # httpx-sse hands a lone `retry:` over as a data-less event, which browsers never dispatch
    async for event in events:
        if event.retry is None or event.data:
            yield event


async def read_until_end(events: AsyncIterator[ServerSentEvent]) -> list[ServerSentEvent]:
    """Every event up to and including `end`; the stream must close right after it."""
    received: list[ServerSentEvent] = []
    async with asyncio.timeout(STREAM_TIMEOUT):
        async for event in events:
            received.append(event)
    assert received, "the stream closed without an event"
    assert received[-1].event == "end", [e.event for e in received]
    return received


async def read_events(events: AsyncIterator[ServerSentEvent], count: int) -> list[ServerSentEvent]:
    """The next ``count`` events."""
    received: list[ServerSentEvent] = []
    async with asyncio.timeout(STREAM_TIMEOUT):
        while len(received) < count:
            received.append(await anext(events))
    return received


# ``async with start_server(logs={...}) as server``: the app with these settings sections
ServerFactory = Callable[..., AbstractAsyncContextManager[LiveServer]]
