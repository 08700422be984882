"""The agent's HTTP client and log shipper against a protocol double on a real loopback port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from raibid_api.agent.client import (
    AgentClient,
    AgentProtocolError,
    LeaseLostError,
    RetryPolicy,
)
from raibid_api.agent.log_shipper import LogShipper
from raibid_api.agent.runner import Outcome
from raibid_api.errors import AuthenticationError, ServiceUnavailableError
from tests.support.polling import eventually
from tests.support.protocol_double import ProtocolDouble

FAST_RETRY = RetryPolicy(initial=0.01, maximum=0.05)
JOB = {"id": "job-1", "clone_url": "file:///nowhere.git", "commit": "a" * 40, "attempt": 1}


@pytest.fixture
async def client(double: ProtocolDouble) -> AsyncIterator[AgentClient]:
    async with AgentClient(double.url, "agent-token", retry=FAST_RETRY, call_deadline=5) as c:
        yield c


async def claimed_token(double: ProtocolDouble, client: AgentClient) -> str:
    double.add_job(dict(JOB))
    claimed = await client.claim("agent-a", [], wait=1)
    assert claimed is not None
    return claimed.token


async def test_claim_returns_the_job_its_token_and_lease(
    double: ProtocolDouble, client: AgentClient
) -> None:
    double.add_job(dict(JOB))

    claimed = await client.claim("agent-a", ["arm64"], wait=1)

    assert claimed is not None
    assert claimed.job_id == "job-1"
    assert claimed.token == "token-job-1"
    assert claimed.lease_seconds == pytest.approx(double.lease_seconds)


async def test_claim_without_a_job_answers_none_after_the_wait(
    double: ProtocolDouble, client: AgentClient
) -> None:
    assert await client.claim("agent-a", [], wait=0.2) is None
    assert double.requests == ["/agent/claim"]


async def test_claim_refused_token_raises_authentication_error_without_retry(
    double: ProtocolDouble, client: AgentClient
) -> None:
    double.fail_next = [401]

    with pytest.raises(AuthenticationError):
        await client.claim("agent-a", [], wait=0.1)
    assert double.requests == ["/agent/claim"]


async def test_server_errors_are_retried_until_success(
    double: ProtocolDouble, client: AgentClient
) -> None:
    token = await claimed_token(double, client)
    double.fail_next = [503, 500, 502]

    assert await client.heartbeat("job-1", token) is False
    assert double.heartbeats == 1
    assert client.retried == 3


async def test_client_error_is_never_retried(double: ProtocolDouble, client: AgentClient) -> None:
    token = await claimed_token(double, client)
    double.fail_next = [400]

    with pytest.raises(AgentProtocolError):
        await client.complete("job-1", token, Outcome("success", 0))
    assert double.requests.count("/agent/jobs/job-1/complete") == 1


async def test_unreachable_server_raises_after_the_deadline(double: ProtocolDouble) -> None:
    await double.go_down()
    async with AgentClient(double.url, "t", retry=FAST_RETRY, call_deadline=0.3) as client:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError):
            await client.claim("agent-a", [], wait=0.1)
    assert time.monotonic() - started < 2
    assert client.retried >= 1


async def test_heartbeat_reports_cancel_and_refused_token_loses_the_lease(
    double: ProtocolDouble, client: AgentClient
) -> None:
    token = await claimed_token(double, client)
    double.cancelled.add("job-1")

    assert await client.heartbeat("job-1", token) is True
    with pytest.raises(LeaseLostError):
        await client.heartbeat("job-1", "someone-else")


async def test_complete_sends_status_exit_code_and_reason(
    double: ProtocolDouble, client: AgentClient
) -> None:
    token = await claimed_token(double, client)

    await client.complete("job-1", token, Outcome("failed", reason="timeout"))

    assert double.completions["job-1"] == [
        {"status": "failed", "exit_code": None, "reason": "timeout"}
    ]


async def ship(shipper: LogShipper, count: int, prefix: str = "line") -> list[str]:
    """Put ``count`` lines, yielding now and then as a running step would."""
    sent = [f"{prefix}-{i}" for i in range(count)]
    for i, line in enumerate(sent):
        await shipper.put("stderr" if i % 7 == 0 else "stdout", line)
        if i % 50 == 0:
            await asyncio.sleep(0)
    return sent


async def test_shipper_delivers_a_line_about_a_tenth_of_a_second_behind(
    double: ProtocolDouble, client: AgentClient
) -> None:
    token = await claimed_token(double, client)
    async with LogShipper(client, "job-1", token, max_delay=0.1) as shipper:
        put_at = time.monotonic()
        await shipper.put("stdout", "hello")
        await eventually(lambda: double.lines("job-1") == ["hello"], what="line stored")
        delay = time.monotonic() - put_at

    assert 0.05 <= delay < 1.0
    assert double.logs["job-1"] == [{"line": "hello", "stream": "stdout"}]


async def test_shipper_loses_reorders_and_doubles_nothing_across_a_server_restart(
    double: ProtocolDouble, client: AgentClient
) -> None:
    token = await claimed_token(double, client)
    # The third batch is stored but never answered; then the server refuses connections.
    double.crash_on_batch = 3
    shipper = LogShipper(client, "job-1", token, max_batch_lines=100, max_delay=0.01)
    shipper.start()
    producer = asyncio.create_task(ship(shipper, 3000))
    await eventually(lambda: double.down, what="server crashed")
    retried = client.retried
    await eventually(lambda: client.retried >= retried + 3, what="client retried while down")

    await double.come_up()
    sent = await producer

    assert await shipper.close(within=10)
    assert double.lines("job-1") == sent
    assert double.skipped_lines > 0  # the unanswered batch was sent again and not doubled
    assert shipper.offset == 3000


async def test_shipper_halves_batches_the_server_finds_too_large(
    double: ProtocolDouble, client: AgentClient
) -> None:
    token = await claimed_token(double, client)
    double.max_batch_lines = 40
    async with LogShipper(client, "job-1", token, max_batch_lines=500) as shipper:
        sent = await ship(shipper, 1000)

    assert double.lines("job-1") == sent


async def test_shipper_marks_lines_the_server_lost_and_continues_after_them(
    double: ProtocolDouble, client: AgentClient
) -> None:
    token = await claimed_token(double, client)
    async with LogShipper(client, "job-1", token) as shipper:
        first = await ship(shipper, 10, "a")
    del double.logs["job-1"][5:]  # a failover lost five acknowledged lines
    async with LogShipper(client, "job-1", token, offset=shipper.offset) as again:
        second = await ship(again, 3, "b")

    assert double.lines("job-1") == [
        *first[:5],
        "[raibid] the server lost 5 log lines here",
        *second,
    ]


async def test_shipper_stops_and_drops_lines_when_the_lease_is_lost(
    double: ProtocolDouble, client: AgentClient
) -> None:
    token = await claimed_token(double, client)
    double.revoked.add("job-1")
    shipper = LogShipper(client, "job-1", token, max_pending=10)
    shipper.start()

    await ship(shipper, 100)  # would block on a full buffer if the shipper kept waiting

    await eventually(lambda: shipper.lease_lost, what="lease lost")
    assert await shipper.close(within=1)
    assert double.lines("job-1") == []


async def test_shipper_keeps_lines_through_an_outage_longer_than_a_call_deadline(
    double: ProtocolDouble,
) -> None:
    async with AgentClient(double.url, "t", retry=FAST_RETRY, call_deadline=0.2) as client:
        token = await claimed_token(double, client)
        shipper = LogShipper(client, "job-1", token, max_batch_lines=50, max_delay=0.01)
        shipper.start()
        await double.go_down()
        sent = await ship(shipper, 500)
        # 20 retries back off longer than one call's 0.2 s deadline: calls gave up, lines stayed.
        await eventually(lambda: client.retried >= 20, what="calls gave up while down")
        assert shipper.unsent == 500

        await double.come_up()

        assert await shipper.close(within=10)
    assert double.lines("job-1") == sent
