"""Status badges: the newest finished job of a branch, the default branch the forge names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from raibid_api.config import Settings
from tests.support.aliases import SettingsFactory
from tests.support.api import ADMIN, assert_error
from tests.support.webhook_app import serving
from tests.support.webhook_deliveries import deliver, pull_request_body, push_body, sha

BADGE = "/badges/acme/widgets/status.svg"


def with_reads(settings: Settings, *, anonymous: bool) -> Settings:
    auth = settings.auth.model_copy(update={"anonymous_read": anonymous})
    return settings.model_copy(update={"auth": auth})


@pytest.fixture
async def client(settings_for: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    """An app with open reads, as a public README's badge needs."""
    async with serving(with_reads(settings_for(), anonymous=True)) as api:
        yield api


async def claim(client: httpx.AsyncClient) -> tuple[str, str]:
    answer = await client.post(
        "/agent/claim", json={"agent_id": "a1", "labels": [], "wait": 0}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["job"]["id"]), str(answer.json()["token"])


async def finish(client: httpx.AsyncClient, held: tuple[str, str], status: str) -> None:
    job_id, token = held
    answer = await client.post(
        f"/agent/jobs/{job_id}/complete",
        json={"status": status, "exit_code": 0 if status == "success" else 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text


async def badge(client: httpx.AsyncClient, query: str = "") -> str:
    answer = await client.get(BADGE + query)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.headers["cache-control"] == "no-cache, max-age=0"
    return answer.text


def message(svg: str) -> str:
    for word in ("passing", "failing", "unknown"):
        if f">{word}</text>" in svg:
            return word
    raise AssertionError(svg)


async def test_the_badge_shows_the_default_branch_the_webhook_named(
    client: httpx.AsyncClient,
) -> None:
    assert message(await badge(client)) == "unknown"
    # the recorded Gitea push names "main" as the default branch; a push to "trunk" says
    # nothing about main, and the repo's default is learnt when the job ends
    await deliver(client, push_body(sha(1), branch="trunk"))
    await finish(client, await claim(client), "failed")
    assert message(await badge(client)) == "unknown"
    assert message(await badge(client, "?branch=trunk")) == "failing"

    await deliver(client, push_body(sha(2), branch="main"))
    await finish(client, await claim(client), "success")
    assert message(await badge(client)) == "passing"
    assert message(await badge(client, "?branch=main")) == "passing"
    assert message(await badge(client, "?branch=other")) == "unknown"


async def test_an_older_job_ending_late_and_pull_requests_leave_the_badge_alone(
    client: httpx.AsyncClient,
) -> None:
    await deliver(client, push_body(sha(1), branch="main"))
    older = await claim(client)
    await deliver(client, push_body(sha(2), branch="main"))  # cancels nothing: older runs
    newer = await claim(client)
    await finish(client, newer, "success")
    await finish(client, older, "failed")
    assert message(await badge(client, "?branch=main")) == "passing"

    # a pull request's job is about its head branch merged, not about the branch
    pr = (await deliver(client, pull_request_body(3, sha(3)), event="pull_request")).json()
    head = (await client.get(f"/jobs/{pr['job_id']}", headers=ADMIN)).json()["branch"]
    assert head == "test-patch-1"
    await finish(client, await claim(client), "failed")
    assert message(await badge(client, f"?branch={head}")) == "unknown"
    assert message(await badge(client, "?branch=main")) == "passing"


async def test_a_cancelled_job_leaves_the_badge_alone(client: httpx.AsyncClient) -> None:
    await deliver(client, push_body(sha(1), branch="main"))
    await finish(client, await claim(client), "success")
    job = (await deliver(client, push_body(sha(2), branch="main"))).json()["job_id"]
    cancelled = await client.post(f"/jobs/{job}/cancel", headers=ADMIN)
    assert cancelled.status_code == 200, cancelled.text
    assert message(await badge(client)) == "passing"


async def test_the_badge_is_revalidated_with_its_etag(client: httpx.AsyncClient) -> None:
    first = await client.get(BADGE)
    etag = first.headers["etag"]
    again = await client.get(BADGE, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    await deliver(client, push_body(sha(1), branch="main"))
    await finish(client, await claim(client), "success")
    changed = await client.get(BADGE, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


async def test_text_in_the_badge_is_escaped(client: httpx.AsyncClient) -> None:
    svg = await badge(client, "?branch=%3Cscript%3E%26%22")
    assert "<script>" not in svg
    assert "&lt;script&gt;&amp;&quot;" in svg


async def test_bad_badge_requests_answer_json_errors(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/badges/acme/wid%20gets/status.svg"), 400, "invalid_input")
    assert_error(await client.get("/badges/acme/widgets/status.svg?branch="), 422,
                 "validation_error")  # fmt: skip
    assert_error(await client.get(f"{BADGE}?branch={'b' * 256}"), 422, "validation_error")
    assert_error(await client.get(f"{BADGE}?branch=a%0Ab"), 400, "invalid_input")


async def test_closed_reads_need_a_read_token(settings_for: SettingsFactory) -> None:
    async with serving(with_reads(settings_for(), anonymous=False)) as client:
        assert_error(await client.get(BADGE), 401, "unauthenticated")
        answer = await client.get(BADGE, headers=ADMIN)
        assert answer.status_code == 200
