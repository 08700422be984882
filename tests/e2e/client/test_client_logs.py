"""`raibid-api logs [-f]` against a real server process, with an agent posting lines over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.client_process import (
    TRIGGER,
    Following,
    client_env,
    run_client,
    start_client,
)
from tests.support.http_agent import HttpAgent
from tests.support.polling import eventually_sync
from tests.support.server_process import OPERATOR, OPERATOR_TOKEN, Server, launch_server
from tests.support.tcp_proxy import tcp_proxy

pytestmark = pytest.mark.e2e

TIMEOUT = httpx.Timeout(10.0)
NOTE = "[raibid] attempt 1 started on agent e2e-agent"


def created_job(env: dict[str, str]) -> str:
    run = run_client("jobs", "run", *TRIGGER, env=env)
    assert run.returncode == 0, run.stderr
    return run.stdout.split("\t")[0]


def printed(client: Following, count: int) -> None:
    eventually_sync(lambda: len(client.lines()) >= count, 15.0, f"{count} lines printed")


@pytest.mark.parametrize(("outcome", "status"), [("success", 0), ("failed", 1)])
def test_follow_prints_every_line_and_exits_with_the_outcome(
    server: Server, tmp_path: Path, outcome: str, status: int
) -> None:
    env = client_env(server.base_url, OPERATOR_TOKEN)
    job_id = created_job(env)
    client = start_client(tmp_path, "logs", "-f", job_id, env=env)
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        agent = HttpAgent(http, OPERATOR)
        assert agent.job_id == job_id
        agent.log("cloning", "building")
        printed(client, 3)  # live, while the job runs
        agent.log("\x1b[32mtests passed\x1b[0m")
        agent.complete(outcome)
    assert client.wait() == status, client.errors()
    assert client.lines() == [NOTE, "cloning", "building", "\x1b[32mtests passed\x1b[0m"]
    assert f"job {job_id} running" in client.errors()
    assert f"job {job_id} {outcome}" in client.errors()

    # an ended job: the whole log at once, the same status
    again = run_client("logs", "--follow", job_id, env=env)
    assert again.returncode == status
    assert again.stdout.splitlines() == client.lines()
    text = run_client("logs", job_id, env=env)
    assert text.returncode == 0
    assert "cloning" in text.stdout


def test_a_cancelled_job_exits_3(server: Server, tmp_path: Path) -> None:
    env = client_env(server.base_url, OPERATOR_TOKEN)
    job_id = created_job(env)
    client = start_client(tmp_path, "logs", "-f", job_id, env=env)
    # connected before or after the cancel, the client sees the job end cancelled
    assert run_client("jobs", "cancel", job_id, env=env).returncode == 0
    assert client.wait() == 3, client.errors()
    assert f"job {job_id} cancelled" in client.errors()


def test_run_follow_exits_with_the_outcome(server: Server, tmp_path: Path) -> None:
    env = client_env(server.base_url, OPERATOR_TOKEN)
    client = start_client(tmp_path, "jobs", "run", *TRIGGER, "--follow", env=env)
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        eventually_sync(
            lambda: http.get("/jobs", headers=OPERATOR).json()["total"] == 1, 15.0, "the job"
        )
        agent = HttpAgent(http, OPERATOR)
        agent.log("one line")
        agent.complete("failed")
    assert client.wait() == 1, client.errors()
    assert client.lines() == [NOTE, "one line"]
    assert f"job {agent.job_id} pending" in client.errors()


def test_a_cut_connection_is_resumed_and_every_line_arrives_once(
    server: Server, tmp_path: Path
) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    env = client_env(server.base_url, OPERATOR_TOKEN)
    job_id = created_job(env)
    with (
        tcp_proxy(port) as proxy,
        httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http,
    ):
        client = start_client(
            tmp_path, "logs", "-f", job_id, env=client_env(proxy.url, OPERATOR_TOKEN)
        )
        agent = HttpAgent(http, OPERATOR)
        sent = [f"line {n}" for n in range(200)]
        agent.log(*sent[:100])
        printed(client, 101)
        assert proxy.sever() == 1  # the client's one stream
        agent.log(*sent[100:150])  # written while the client is cut off
        eventually_sync(lambda: proxy.accepted >= 2, 15.0, "the client to reconnect")
        agent.log(*sent[150:])
        agent.complete("success")
        assert client.wait() == 0, client.errors()
    assert client.lines() == [NOTE, *sent]
    assert "Traceback" not in client.errors()


def test_a_server_gone_for_good_ends_the_follow_with_status_5(
    server: Server, tmp_path: Path
) -> None:
    env = client_env(server.base_url, OPERATOR_TOKEN)
    job_id = created_job(env)
    client = start_client(tmp_path, "logs", "-f", "--reconnect-for", "1", job_id, env=env)
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        agent = HttpAgent(http, OPERATOR)
        agent.log("started")
        printed(client, 2)
    server.process.kill()
    server.process.wait()
    assert client.wait() == 5
    assert client.errors().splitlines()[-1].startswith(f"error: cannot reach {server.base_url}")
    assert "Traceback" not in client.errors()
    assert client.lines() == [NOTE, "started"]


def test_a_restarted_server_is_followed_on_without_a_gap_or_a_repeat(
    server: Server, tmp_path: Path
) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    env = client_env(server.base_url, OPERATOR_TOKEN)
    job_id = created_job(env)
    client = start_client(tmp_path, "logs", "-f", "--reconnect-for", "60", job_id, env=env)
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        agent = HttpAgent(http, OPERATOR)
        agent.log("before the restart")
        printed(client, 2)
        # a graceful shutdown ends the stream without `end`; the client keeps trying
        assert server.terminate() == 0
        restarted = launch_server(tmp_path, tmp_path / "config.yaml", port)
        try:
            agent.log("after the restart")
            agent.complete("success")
            assert client.wait() == 0, client.errors()
        finally:
            restarted.terminate()
    assert client.lines() == [NOTE, "before the restart", "after the restart"]
    assert "Traceback" not in client.errors()
