"""The contract every `StatusReporter` meets, run against each forge's HTTP double."""

from __future__ import annotations

import logging

import pytest

from raibid_api.forges.clients import CommitStatus
from raibid_api.forges.states import CommitState
from tests.support.forges import (
    FORGE_TOKEN,
    KNOWN_REPO,
    ForgeUnderTest,
    client_for,
)
from tests.support.logs import LogEvents

SHA = "0123456789abcdef0123456789abcdef01234567"


def status(state: CommitState = "success", repo: str = KNOWN_REPO) -> CommitStatus:
    return CommitStatus(repo, SHA, state, "Passed in 12s", "https://ci.example.org/jobs/1/logs",
                        "raibid-ci")  # fmt: skip


async def test_status_is_created_with_the_forge_path_auth_and_body(forge: ForgeUnderTest) -> None:
    delivery = await forge.reporter.report(status())
    assert (delivery.outcome, delivery.http_status) == ("sent", 201)
    [request] = forge.double.requests
    assert request.method == "POST"
    prefix = "/repos" if forge.name == "github" else "/api/v1/repos"
    assert request.path == f"{prefix}/{KNOWN_REPO}/statuses/{SHA}"
    assert request.json() == {"state": "success", "target_url": "https://ci.example.org/jobs/1/logs",
                              "description": "Passed in 12s", "context": "raibid-ci"}  # fmt: skip
    assert request.headers["content-type"] == "application/json"
    assert forge.double.shown(KNOWN_REPO, SHA, "raibid-ci") == "success"


async def test_forge_specific_headers_are_sent(forge: ForgeUnderTest) -> None:
    await forge.reporter.report(status())
    headers = forge.double.requests[0].headers
    if forge.name == "github":
        assert headers["authorization"] == f"Bearer {FORGE_TOKEN}"
        assert headers["accept"] == "application/vnd.github+json"
        assert headers["x-github-api-version"] == "2022-11-28"
    else:
        assert headers["authorization"] == f"token {FORGE_TOKEN}"
    assert headers["user-agent"].startswith("raibid-api/")


@pytest.mark.parametrize("state", ["pending", "success", "failure", "error"])
async def test_every_commit_state_is_accepted(forge: ForgeUnderTest, state: CommitState) -> None:
    delivery = await forge.reporter.report(status(state))
    assert delivery.outcome == "sent"
    assert forge.double.shown(KNOWN_REPO, SHA, "raibid-ci") == state


async def test_the_last_status_posted_is_the_one_shown(forge: ForgeUnderTest) -> None:
    for state in ("pending", "failure", "success"):
        await forge.reporter.report(status(state))
    assert forge.double.shown(KNOWN_REPO, SHA, "raibid-ci") == "success"


async def test_bad_token_is_rejected_for_good(forge: ForgeUnderTest) -> None:
    wrong = client_for(forge.name, forge.double.url, token="not-the-token-000")
    try:
        delivery = await wrong.report(status())
    finally:
        await wrong.aclose()
    assert (delivery.outcome, delivery.http_status) == ("rejected", 401)
    assert forge.double.statuses == []


async def test_unknown_repository_is_rejected_for_good(forge: ForgeUnderTest) -> None:
    delivery = await forge.reporter.report(status(repo="acme/missing"))
    assert (delivery.outcome, delivery.http_status) == ("rejected", 404)
    assert delivery.detail.startswith("HTTP 404: ")


async def test_server_errors_are_retried(forge: ForgeUnderTest) -> None:
    forge.double.mode = "error"
    delivery = await forge.reporter.report(status())
    assert (delivery.outcome, delivery.http_status) == ("retry", 500)


async def test_rate_limit_is_retried_after_the_time_the_forge_asks(forge: ForgeUnderTest) -> None:
    forge.double.mode = "rate_limited"
    delivery = await forge.reporter.report(status())
    assert (delivery.outcome, delivery.http_status, delivery.retry_after_s) == ("retry", 429, 7.0)


async def test_forbidden_is_rejected_for_good(forge: ForgeUnderTest) -> None:
    forge.double.mode = "forbidden"
    delivery = await forge.reporter.report(status())
    assert (delivery.outcome, delivery.http_status) == ("rejected", 403)
    assert delivery.detail == "HTTP 403: Resource not accessible by integration"


async def test_forbidden_for_an_exhausted_rate_limit_is_retried(forge: ForgeUnderTest) -> None:
    forge.double.mode = "quota"
    delivery = await forge.reporter.report(status())
    assert (delivery.outcome, delivery.http_status) == ("retry", 403)


async def test_refused_connection_is_retried(forge: ForgeUnderTest) -> None:
    await forge.double.go_down()
    delivery = await forge.reporter.report(status())
    assert (delivery.outcome, delivery.http_status) == ("retry", None)
    assert "ConnectError" in delivery.detail


async def test_forge_that_does_not_answer_in_time_is_retried(forge: ForgeUnderTest) -> None:
    forge.double.mode = "hang"
    slow_client = client_for(forge.name, forge.double.url, timeout_s=0.2)
    try:
        delivery = await slow_client.report(status())
    finally:
        await slow_client.aclose()
    assert (delivery.outcome, delivery.http_status) == ("retry", None)
    assert "Timeout" in delivery.detail


async def test_no_token_in_any_detail_or_log_line(
    forge: ForgeUnderTest, captured_logs: LogEvents, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    details = [(await forge.reporter.report(status())).detail,
               (await forge.reporter.report(status(repo="acme/missing"))).detail]  # fmt: skip
    forge.double.mode = "error"
    details.append((await forge.reporter.report(status())).detail)
    await forge.double.go_down()
    details.append((await forge.reporter.report(status())).detail)
    assert caplog.records, "httpx logs every request; nothing captured means nothing was checked"
    lines = [record.getMessage() for record in caplog.records] + details
    lines += [repr(event) for event in captured_logs]
    assert not [line for line in lines if FORGE_TOKEN in line]
