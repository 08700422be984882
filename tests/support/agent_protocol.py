"""How the agent protocol tests speak to the app: tokens, calls, and what Redis holds for a job."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from raibid_api.jobs.reaper import Reaper
from raibid_api.storage.keys import GROUP, Keys
from tests.support.aliases import RawRedis
from tests.support.factories import ManualClock
from tests.support.polling import eventually

READ_TOKEN = "reader-token-0123456789"
WRITE_TOKEN = "writer-token-0123456789"
AGENT_TOKEN = "agent-token-0123456789"
TOKENS: list[dict[str, Any]] = [
    {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
    {"name": "writer", "scopes": ["read", "write"], "value": WRITE_TOKEN},
    {"name": "agent", "scopes": ["agent"], "value": AGENT_TOKEN},
]
LEASE_SECONDS = 30
# the lines the server writes into a job's log when an attempt starts or ends
SERVER_NOTE = re.compile(r"^\[raibid\] (attempt \d+|the agent of attempt \d+)")
CLONE_URL = "https://git.example.test/acme/widgets.git"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


READ = bearer(READ_TOKEN)
WRITE = bearer(WRITE_TOKEN)
AGENT = bearer(AGENT_TOKEN)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check that ``response`` is the JSON error body (docs/api.md) with ``status`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["request_id"]
    return body


@dataclass(frozen=True)
class Held:
    """A job an agent claimed: the Job JSON and its job token."""

    job: dict[str, Any]
    token: str

    @property
    def id(self) -> str:
        """The job's id."""
        return str(self.job["id"])


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused call must leave alone: the job hash, its log and the queue."""

    job: dict[str, str]
    events: list[tuple[str, dict[str, str]]]
    queue: list[tuple[str, dict[str, str]]]
    claimed_entries: int


@dataclass
class ProtocolApp:
    """A client of the app, the Redis it writes to, and the clock it reads."""

    http: httpx.AsyncClient
    redis: RawRedis
    keys: Keys
    clock: ManualClock
    reaper: Reaper
    app: FastAPI

    @classmethod
    @asynccontextmanager
    async def serving(
        cls, app: FastAPI, redis: RawRedis, keys: Keys, clock: ManualClock
    ) -> AsyncIterator[ProtocolApp]:
        """A client of ``app``, whose lifespan the caller already runs."""
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://raibid.test") as http:
            yield cls(http, redis, keys, clock, app.state.raibid.reaper, app)

    async def trigger(self, branch: str = "main") -> dict[str, Any]:
        """A new pending job, by manual trigger."""
        response = await self.http.post(
            "/jobs", json={"repo": "acme/widgets", "clone_url": CLONE_URL, "branch": branch},
            headers=WRITE,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        job: dict[str, Any] = response.json()
        return job

    async def claim_response(
        self, agent_id: str = "agent-1", wait: float = 0, labels: list[str] | None = None
    ) -> httpx.Response:
        """The raw answer to a claim with the agent token."""
        body = {"agent_id": agent_id, "labels": labels or [], "wait": wait}
        return await self.http.post("/agent/claim", json=body, headers=AGENT)

    async def claim(self, agent_id: str = "agent-1", labels: list[str] | None = None) -> Held:
        """Claim the next job, which must be there."""
        response = await self.claim_response(agent_id, labels=labels)
        assert response.status_code == 200, response.text
        body = response.json()
        return Held(body["job"], body["token"])

    async def blocked_claims(self) -> int:
        """How many Redis clients sit blocked in XREADGROUP (a claim's long poll) right now."""
        clients = await self.redis.client_list()
        return sum(1 for c in clients if c["cmd"] == "xreadgroup" and "b" in c["flags"])

    async def until_a_claim_waits(self) -> None:
        """Wait until a claim's long poll is blocked in Redis, failing after 5 s."""

        async def waiting() -> bool:
            return await self.blocked_claims() > 0

        await eventually(waiting, 5, "a claim to wait in Redis")

    async def trigger_and_claim(self, agent_id: str = "agent-1") -> Held:
        """A job held by ``agent_id``."""
        job = await self.trigger()
        held = await self.claim(agent_id)
        assert held.id == job["id"]
        return held

    async def call(
        self, job_id: str, action: str, token: str | None, body: object = None
    ) -> httpx.Response:
        """A job call (`heartbeat`, `logs`, `complete`) with ``token`` as its bearer."""
        headers = bearer(token) if token is not None else {}
        return await self.http.post(f"/agent/jobs/{job_id}/{action}", json=body, headers=headers)

    async def heartbeat(self, held: Held) -> dict[str, Any]:
        """A heartbeat that must be accepted."""
        response = await self.call(held.id, "heartbeat", held.token)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def send_logs(self, held: Held, lines: list[Any], offset: int | None = None) -> int:
        """A batch that must be accepted; the line count the server answers."""
        body: dict[str, Any] = {"lines": lines}
        if offset is not None:
            body["offset"] = offset
        response = await self.call(held.id, "logs", held.token, body)
        assert response.status_code == 200, response.text
        count: int = response.json()["lines"]
        return count

    async def complete(self, held: Held, status: str = "success", **extra: Any) -> httpx.Response:
        """A completion, answered however the server answers it."""
        body = {"status": status, "exit_code": 0 if status == "success" else 1} | extra
        return await self.call(held.id, "complete", held.token, body)

    async def job(self, job_id: str) -> dict[str, Any]:
        """The job as `GET /jobs/{id}` shows it."""
        response = await self.http.get(f"/jobs/{job_id}", headers=READ)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job through the API."""
        response = await self.http.post(f"/jobs/{job_id}/cancel", headers=WRITE)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    async def log_lines(self, job_id: str, *, notes: bool = False) -> list[tuple[str, str]]:
        """The job's log lines as (stream, line), read from its event stream through the API.

        The lines the server writes itself at an attempt's start and end are left out unless
        ``notes``: most tests look at what the agent sent.
        """
        response = await self.http.get(
            f"/jobs/{job_id}/logs", headers=READ | {"Accept": "application/json"}
        )
        assert response.status_code == 200, response.text
        return [
            (entry["data"]["stream"], entry["data"]["line"])
            for entry in response.json()
            if entry["event"] == "log" and (notes or not SERVER_NOTE.match(entry["data"]["line"]))
        ]

    async def statuses(self, job_id: str) -> list[str]:
        """The statuses the job's event stream records, in order."""
        entries = await self.redis.xrange(self.keys.events(job_id))
        return [fields["status"] for _, fields in entries if fields["type"] == "status"]

    async def queue_length(self) -> int:
        """XLEN of the queue: jobs waiting plus jobs held."""
        length: int = await self.redis.xlen(self.keys.queue)
        return length

    async def entries(self, job_id: str) -> list[str]:
        """The job's event stream as `status:<status>` and `<stream>:<line>` strings, in order."""
        found = await self.redis.xrange(self.keys.events(job_id))
        return [
            f"status:{fields['status']}" if fields["type"] == "status"
            else f"{fields['stream']}:{fields['line']}"
            for _, fields in found
        ]  # fmt: skip

    async def snapshot(self, job_id: str) -> Snapshot:
        """What Redis holds about ``job_id`` and the queue right now."""
        pending = await self.redis.xpending(self.keys.queue, GROUP)
        return Snapshot(
            job=await self.redis.hgetall(self.keys.job(job_id)),
            events=await self.redis.xrange(self.keys.events(job_id)),
            queue=await self.redis.xrange(self.keys.queue),
            claimed_entries=int(pending["pending"]),
        )

    def expire_lease(self) -> None:
        """Move the clock past every lease handed out so far."""
        self.clock.advance(LEASE_SECONDS + 1)


# ``async with start_protocol(max_attempts=1): ...``: the app with these ``jobs`` settings
ProtocolFactory = Callable[..., AbstractAsyncContextManager[ProtocolApp]]
