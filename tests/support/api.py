"""How the API tests reach the app: the tokens, an in-process client, the error-body check, and
a snapshot of a test's keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from raibid_api.api.auth import token_digest
from raibid_api.app import create_app
from raibid_api.config import Settings

READ_TOKEN = "reader-token-0123456789"
WRITE_TOKEN = "writer-token-0123456789"
AGENT_TOKEN = "agent-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"

TOKENS: list[dict[str, Any]] = [
    {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
    {"name": "writer", "scopes": ["read", "write"], "value": WRITE_TOKEN},
    {"name": "agent", "scopes": ["agent"], "value": AGENT_TOKEN},
    # stored as a digest, the way production configs hold tokens
    {"name": "admin", "scopes": ["read", "write", "agent"], "sha256": token_digest(ADMIN_TOKEN)},
]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


READ = bearer(READ_TOKEN)
WRITE = bearer(WRITE_TOKEN)
AGENT = bearer(AGENT_TOKEN)
ADMIN = bearer(ADMIN_TOKEN)
JSON = {"Content-Type": "application/json"}

PUBLIC_URL = "http://ci.example.test"
# every key of a test: its serialised value and whether it has a TTL
Snapshot = dict[bytes, tuple[bytes | None, bool]]
JOB_FIELDS = frozenset(
    {
        "id", "status", "repo", "clone_url", "ref", "branch", "tag", "commit", "event", "forge",
        "delivery_id", "pull_request", "author", "pusher", "message", "created_at", "started_at",
        "finished_at", "duration", "exit_code", "agent_id", "attempt", "retry_of", "reason",
        "request_id", "links",
    }
)  # fmt: skip


def trigger_body(**overrides: object) -> dict[str, object]:
    """A valid manual trigger, with ``overrides`` applied (a None value drops the key)."""
    body: dict[str, object] = {
        "repo": "acme/widgets",
        "clone_url": "https://git.example.test/acme/widgets.git",
        "branch": "main",
    }
    body |= overrides
    return {key: value for key, value in body.items() if value is not None}


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` running under its lifespan, in this process.

    Unhandled errors come back as the app's own 500 answer instead of being raised in the test,
    so a test sees exactly what a client would.
    """
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://raibid.test") as client:
            yield client


async def leftover_tasks() -> set[asyncio.Task[Any]]:
    """The tasks of this event loop still running, besides the caller."""
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


def running_app(settings: Settings) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """A client of ``create_app(settings)``, as `serving` runs it."""
    return serving(create_app(settings))


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check that ``response`` is the JSON error body (docs/api.md) with ``status`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body, dict)
    assert body["error"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["request_id"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def assert_client_error(response: httpx.Response) -> None:
    """Check that ``response`` is a success or a 4xx JSON error: never a server failure."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, response.status_code, response.json()["error"])


async def snapshot(redis: Redis, prefix: str) -> Snapshot:
    """Every key of the test: its serialised value and whether it has a TTL."""
    state: Snapshot = {}
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        state[key] = (await redis.dump(key), await redis.pttl(key) >= 0)
    return state
