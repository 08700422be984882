"""Deliveries for the webhook HTTP tests: recorded fixtures and made-up pushes, signed, and the
Redis state they leave behind."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis

from tests.support.webhook_samples import (
    SECRET,
    Forge,
    delivery_headers,
    fixture_delivery,
    fixture_payload,
)

# Keys a rejected delivery may leave: its journal entry and the rate-limit counters.
BOOKKEEPING = (":webhook:deliveries", ":ratelimit:")


def sha(n: int) -> str:
    """A distinct, valid 40-hex commit sha for ``n`` (never git's all-zero null id)."""
    return f"c{n:039x}"


def push_body(
    commit: str,
    *,
    branch: str = "feature",
    repo: str = "acme/widgets",
    message: str = "change things",
    before: str | None = None,
) -> bytes:
    """A Gitea push of ``commit`` to ``branch`` of ``repo``, based on a recorded payload."""
    payload = fixture_payload("gitea/push-1.json")
    owner, name = repo.split("/")
    payload["ref"] = f"refs/heads/{branch}"
    payload["before"] = before or "1" * 40
    payload["after"] = commit
    payload["head_commit"]["id"] = commit
    payload["head_commit"]["message"] = message
    payload["repository"]["full_name"] = repo
    payload["repository"]["name"] = name
    payload["repository"]["owner"]["login"] = owner
    payload["repository"]["clone_url"] = f"https://git.example.test/{repo}.git"
    return json.dumps(payload).encode()


def tag_body(tag: str, commit: str, *, repo: str = "acme/widgets") -> bytes:
    """A Gitea push of tag ``tag`` at ``commit``, based on a recorded payload."""
    payload = json.loads(push_body(commit, repo=repo))
    payload["ref"] = f"refs/tags/{tag}"
    return json.dumps(payload).encode()


def pull_request_body(number: int, commit: str, *, action: str = "synchronized") -> bytes:
    """A Gitea pull request update of PR ``number`` to head ``commit``."""
    payload = fixture_payload("gitea/pull_request-2.json")
    payload["number"] = number
    payload["pull_request"]["number"] = number
    payload["pull_request"]["head"]["sha"] = commit
    payload["action"] = action
    return json.dumps(payload).encode()


def headers_for(
    body: bytes,
    *,
    forge: Forge = "gitea",
    event: str = "push",
    delivery_id: str | None = None,
    secret: str | None = SECRET,
) -> dict[str, str]:
    """The headers of a real ``forge`` delivery of ``body``, signed with ``secret``."""
    headers = delivery_headers(forge, event, body, secret)
    if delivery_id is not None:
        for name in [h for h in headers if h.endswith("-delivery")]:
            headers[name] = delivery_id
    return headers


async def deliver(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    forge: Forge = "gitea",
    event: str = "push",
    delivery_id: str | None = None,
    path: str = "/webhook",
) -> httpx.Response:
    """POST ``body`` as a signed ``forge`` delivery."""
    headers = headers_for(body, forge=forge, event=event, delivery_id=delivery_id)
    return await client.post(f"{path}/{forge}", content=body, headers=headers)


async def deliver_fixture(
    client: httpx.AsyncClient, forge: Forge, name: str
) -> tuple[dict[str, str], httpx.Response]:
    """POST a recorded fixture as ``forge`` delivers it; its headers and the answer."""
    headers, body = fixture_delivery(forge, name)
    return headers, await client.post(f"/webhook/{forge}", content=body, headers=headers)


async def job_ids(redis: Redis, prefix: str) -> set[str]:
    """The ids of every job hash under ``prefix``."""
    found = set()
    async for key in redis.scan_iter(match=f"{prefix}:job:*", count=1000):
        text = key.decode()
        if not text.endswith(":events"):
            found.add(text.rsplit(":", 1)[1])
    return found


async def job_state(redis: Redis, prefix: str) -> dict[bytes, Any]:
    """Every key under ``prefix`` except the bookkeeping of rejected deliveries, with its value."""
    state: dict[bytes, Any] = {}
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        if not any(part in key.decode() for part in BOOKKEEPING):
            state[key] = await redis.dump(key)
    return state


def new_id() -> str:
    """A fresh delivery id, as the forges make them."""
    return str(uuid.uuid4())
