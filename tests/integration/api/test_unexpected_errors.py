"""Failures that are not the client's: an unexpected exception in a route, and Redis going away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from raibid_api.app import create_app
from raibid_api.embedded import EmbeddedRedis
from tests.support.aliases import SettingsFactory
from tests.support.api import READ, WRITE, assert_error, serving, trigger_body
from tests.support.logs import LogEvents

INTERNAL_DETAIL = "secret-internal-detail-4711"


def explode() -> None:
    """A route with a bug in it."""
    raise RuntimeError(INTERNAL_DETAIL)


@pytest.fixture
async def failing_client(settings_for: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The app with one extra route that raises an exception nothing maps."""
    app = create_app(settings_for())
    app.add_api_route("/explode", explode)
    async with serving(app) as client:
        yield client


async def test_unexpected_exception_answers_500_in_the_error_shape_without_internals(
    failing_client: httpx.AsyncClient,
) -> None:
    response = await failing_client.get("/explode", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "error": "internal_error",
        "message": "internal error; see the server log",
        "request_id": "boom-1",
    }
    assert INTERNAL_DETAIL not in response.text


async def test_unexpected_exception_is_logged_with_its_traceback(
    failing_client: httpx.AsyncClient, captured_logs: LogEvents
) -> None:
    await failing_client.get("/explode")
    errors = [event for event in captured_logs if event["log_level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["exc_info"]
    assert (errors[0]["event"], errors[0]["path"]) == ("unhandled error", "/explode")


async def test_unexpected_exception_answer_echoes_the_request_id_header(
    failing_client: httpx.AsyncClient,
) -> None:
    response = await failing_client.get("/explode", headers={"X-Request-ID": "boom-2"})
    assert response.headers.get("x-request-id") == "boom-2"


async def test_unexpected_exception_log_line_carries_the_request_id(
    failing_client: httpx.AsyncClient, captured_logs: LogEvents
) -> None:
    await failing_client.get("/explode", headers={"X-Request-ID": "boom-3"})
    errors = [event for event in captured_logs if event["log_level"] == "error"]
    assert [event.get("request_id") for event in errors] == ["boom-3"]


@pytest.fixture
async def client_of_a_dying_redis(
    settings_for: SettingsFactory, tmp_path: Path, prefix: str
) -> AsyncIterator[tuple[httpx.AsyncClient, EmbeddedRedis]]:
    """The app on a Redis of its own, which the test may stop."""
    with EmbeddedRedis(tmp_path / "redis", appendonly=False) as server:
        settings = settings_for(
            redis={"url": server.url, "key_prefix": prefix, "socket_timeout": "1s"}
        )
        async with serving(create_app(settings)) as client:
            yield client, server


async def test_redis_going_away_answers_503_and_makes_the_app_not_ready(
    client_of_a_dying_redis: tuple[httpx.AsyncClient, EmbeddedRedis],
) -> None:
    client, server = client_of_a_dying_redis
    job = (await client.post("/jobs", headers=WRITE, json=trigger_body())).json()
    assert (await client.get("/ready")).status_code == 200
    server.stop()
    assert_error(await client.get(f"/jobs/{job['id']}", headers=READ), 503, "service_unavailable")
    assert_error(await client.get("/jobs", headers=READ), 503, "service_unavailable")
    assert_error(
        await client.post("/jobs", headers=WRITE, json=trigger_body()), 503, "service_unavailable"
    )
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert ready.json()["checks"]["redis"] != "ok"
    assert (await client.get("/health")).status_code == 200
