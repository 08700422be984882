"""The intake under every alias: one route definition, so the same answers and the same body limit.

The webhook limit is set above `server.max_body_bytes` (1 MiB by default), so a delivery between
the two tells which limit a path took.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.aliases import SettingsFactory
from tests.support.api import READ, WRITE, assert_error
from tests.support.webhook_app import serving
from tests.support.webhook_deliveries import headers_for, job_state, push_body, sha

ALIASES = ["/webhook", "/webhooks", "/api/webhook", "/api/webhooks"]
WEBHOOK_LIMIT = 3_000_000
SERVER_LIMIT = 1_048_576


@pytest.fixture
async def client(
    settings_for: SettingsFactory, raw_redis: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose webhook limit is nearly three times the server's."""
    async with serving(settings_for(max_body_bytes=WEBHOOK_LIMIT)) as api:
        yield api


async def in_chunks(body: bytes) -> AsyncIterator[bytes]:
    """``body`` sent without a declared length, 64 KiB at a time."""
    for start in range(0, len(body), 65536):
        yield body[start : start + 65536]


@pytest.mark.parametrize("alias", ALIASES)
async def test_delivery_between_the_two_limits_makes_a_job_on_every_alias(
    client: httpx.AsyncClient, alias: str
) -> None:
    body = push_body(sha(ALIASES.index(alias) + 1), message="m" * 1_500_000)
    assert SERVER_LIMIT < len(body) < WEBHOOK_LIMIT

    answer = await client.post(f"{alias}/gitea", content=body, headers=headers_for(body))

    assert answer.status_code == 202, answer.text
    job = await client.get(answer.json()["status_url"], headers=READ)
    assert job.json()["commit"] == sha(ALIASES.index(alias) + 1)


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
async def test_delivery_over_the_webhook_limit_is_refused_on_every_alias(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str, alias: str, streamed: bool
) -> None:
    body = push_body(sha(9), message="m" * WEBHOOK_LIMIT)
    before = await job_state(raw_redis, prefix)

    answer = await client.post(
        f"{alias}/gitea",
        content=in_chunks(body) if streamed else body,
        headers=headers_for(body),
    )

    assert ("content-length" in answer.request.headers) is not streamed
    error = assert_error(answer, 413, "payload_too_large")
    assert f"larger than {WEBHOOK_LIMIT} bytes" in error["message"]
    assert await job_state(raw_redis, prefix) == before


@pytest.mark.parametrize("alias", ALIASES)
async def test_another_method_on_an_alias_names_post(client: httpx.AsyncClient, alias: str) -> None:
    answer = await client.get(f"{alias}/gitea", headers=READ)

    assert_error(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "POST"


@pytest.mark.parametrize("alias", ALIASES)
async def test_journal_refuses_a_repo_without_its_owner_on_every_alias(
    client: httpx.AsyncClient, alias: str
) -> None:
    answer = await client.get(f"{alias}/deliveries", params={"repo": "widgets"}, headers=READ)

    error = assert_error(answer, 422, "validation_error")
    assert [problem["loc"] for problem in error["problems"]] == [["query", "repo"]]


@pytest.mark.parametrize("alias", ALIASES)
async def test_explain_takes_the_webhook_limit_on_every_alias(
    client: httpx.AsyncClient, alias: str
) -> None:
    payload = push_body(sha(20), message="m" * 1_500_000).decode()
    request = {"headers": headers_for(payload.encode()), "payload": payload}

    answer = await client.post(f"{alias}/gitea/explain", json=request, headers=WRITE)

    assert len(answer.request.content) > SERVER_LIMIT
    assert answer.status_code == 200, answer.text
    assert answer.json()["forge"] == "gitea"
