"""The whole reference agent: claim from a protocol double, clone real git, run, report."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

import pytest

from raibid_api.agent.client import AgentClient, RetryPolicy
from raibid_api.agent.runner import Outcome, RunSettings
from raibid_api.agent.worker import AgentOptions, AgentWorker, run_agent
from tests.support.git_remote import GitRemote, job_for
from tests.support.polling import eventually
from tests.support.processes import is_running
from tests.support.protocol_double import ProtocolDouble

FAST_RETRY = RetryPolicy(initial=0.01, maximum=0.05)


def pipeline(run: str) -> dict[str, str]:
    return {".raibid.yml": f"steps:\n  - name: main\n    run: '{run}'\n"}


def worker_for(client: AgentClient, root: Path, shutdown_grace: float = 0.2) -> AgentWorker:
    options = AgentOptions(
        agent_id="agent-a",
        workspace_root=root,
        run=RunSettings(job_timeout=30, kill_grace=0.5),
        claim_wait=0.5,
        shutdown_grace=shutdown_grace,
    )
    return AgentWorker(client, options)


async def test_once_runs_one_job_ships_its_log_and_reports_success(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit(pipeline("echo hello; echo world >&2"))
    double.add_job(job_for(remote, commit))

    ran = await run_agent(
        double.url, "agent-token", "agent-a", once=True, workspace_root=tmp_path / "ws"
    )

    assert ran == 1
    assert double.completions["job-1"] == [{"status": "success", "exit_code": 0, "reason": None}]
    lines = double.lines("job-1")
    # the server writes which agent runs the attempt; the agent's first line is its fetch
    assert lines[0].startswith("[raibid] fetching ")
    assert {"line": "world", "stream": "stderr"} in double.logs["job-1"]
    assert list((tmp_path / "ws").iterdir()) == []


async def test_the_agent_writes_no_log_line_per_http_call(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    double.add_job(job_for(remote, remote.commit(pipeline("echo quiet"))))

    await run_agent(double.url, "agent-token", "agent-a", once=True, workspace_root=tmp_path)

    assert len(double.requests) >= 3  # a claim, a log batch, a completion at least
    assert [r.getMessage() for r in caplog.records if r.name.startswith("httpx")] == []
    assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)


async def test_failing_build_is_reported_with_its_exit_code(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    double.add_job(job_for(remote, remote.commit(pipeline("exit 7"))))

    await run_agent(double.url, "agent-token", "agent-a", once=True, workspace_root=tmp_path)

    assert double.completions["job-1"] == [{"status": "failed", "exit_code": 7, "reason": None}]


async def test_missing_pipeline_is_reported_as_no_pipeline_with_a_log_line(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    double.add_job(job_for(remote, remote.commit({"README": "x\n"})))

    await run_agent(double.url, "agent-token", "agent-a", once=True, workspace_root=tmp_path)

    assert double.completions["job-1"] == [
        {"status": "failed", "exit_code": None, "reason": "no_pipeline"}
    ]
    assert any(".raibid.yml" in line for line in double.lines("job-1"))


async def test_cancel_answered_by_a_heartbeat_kills_the_step_within_two_seconds(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    double.lease_seconds = 0.6  # heartbeats every 0.2 s
    double.add_job(job_for(remote, remote.commit(pipeline("sleep 300 & echo $!; wait"))))
    agent = asyncio.create_task(
        run_agent(double.url, "agent-token", "agent-a", once=True, workspace_root=tmp_path)
    )
    await eventually(lambda: any(x.isdigit() for x in double.lines("job-1")), what="step runs")

    double.cancelled.add("job-1")
    asked = time.monotonic()
    await eventually(lambda: "job-1" in double.completions, timeout=5, what="completed")

    assert time.monotonic() - asked < 2.0
    assert double.completions["job-1"] == [
        {"status": "failed", "exit_code": None, "reason": "cancelled"}
    ]
    assert not is_running(int(next(x for x in double.lines("job-1") if x.isdigit())))
    assert await agent == 1


async def test_a_held_heartbeat_brings_the_cancel_long_before_the_heartbeat_interval(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    double.lease_seconds = 60  # one heartbeat held open for 20 s at a time
    double.hold_heartbeats = True
    double.add_job(job_for(remote, remote.commit(pipeline("sleep 300 & echo $!; wait"))))
    agent = asyncio.create_task(
        run_agent(double.url, "agent-token", "agent-a", once=True, workspace_root=tmp_path)
    )
    await eventually(lambda: any(x.isdigit() for x in double.lines("job-1")), what="step runs")

    double.cancelled.add("job-1")
    # half the heartbeat interval: only the held heartbeat can have brought the cancel by then
    await eventually(lambda: "job-1" in double.completions, timeout=10, what="completed")

    assert double.completions["job-1"] == [
        {"status": "failed", "exit_code": None, "reason": "cancelled"}
    ]
    assert double.heartbeats == 1
    assert not is_running(int(next(x for x in double.lines("job-1") if x.isdigit())))
    assert await agent == 1


async def test_a_branch_job_reports_the_commit_it_checked_out_and_its_steps_see_it(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    head = remote.commit(pipeline("echo built $RAIBID_COMMIT"))
    double.add_job(job_for(remote, commit=None))

    await run_agent(double.url, "agent-token", "agent-a", once=True, workspace_root=tmp_path)

    assert double.commits["job-1"] == [head]
    assert f"[raibid] refs/heads/main is at commit {head}" in double.lines("job-1")
    assert f"built {head}" in double.lines("job-1")
    assert double.completions["job-1"][0]["status"] == "success"


async def test_lost_lease_kills_the_step_and_reports_nothing(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    double.lease_seconds = 0.6
    double.add_job(job_for(remote, remote.commit(pipeline("echo started; sleep 300"))))
    async with AgentClient(double.url, "agent-token", retry=FAST_RETRY) as client:
        worker = worker_for(client, tmp_path / "ws")
        loop = asyncio.create_task(worker.run_loop("agent-a", once=True))
        await eventually(lambda: "started" in double.lines("job-1"), what="step runs")

        double.revoked.add("job-1")  # the job was re-queued to another agent

        assert await asyncio.wait_for(loop, 5) == 1
    assert "job-1" not in double.completions
    assert list((tmp_path / "ws").iterdir()) == []


async def test_shutdown_stops_claiming_and_lets_the_running_job_finish(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    flag = tmp_path / "go-on"
    step = f"echo started; while [ ! -e {flag} ]; do sleep 0.02; done; echo finished"
    double.add_job(job_for(remote, remote.commit(pipeline(step))))
    async with AgentClient(double.url, "agent-token", retry=FAST_RETRY) as client:
        worker = worker_for(client, tmp_path / "ws", shutdown_grace=30)
        loop = asyncio.create_task(worker.run_loop("agent-a"))
        await eventually(lambda: "started" in double.lines("job-1"), what="step runs")

        worker.shutdown()
        flag.touch()

        assert await asyncio.wait_for(loop, 5) == 1
    assert double.requests.count("/agent/claim") == 1
    assert double.completions["job-1"] == [{"status": "success", "exit_code": 0, "reason": None}]
    assert "finished" in double.lines("job-1")


async def test_shutdown_grace_over_a_running_job_leaves_it_unreported_for_requeue(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    double.add_job(job_for(remote, remote.commit(pipeline("echo started; sleep 300"))))
    async with AgentClient(double.url, "agent-token", retry=FAST_RETRY) as client:
        worker = worker_for(client, tmp_path / "ws")
        loop = asyncio.create_task(worker.run_loop("agent-a"))
        await eventually(lambda: "started" in double.lines("job-1"), what="step runs")

        worker.shutdown()

        assert await asyncio.wait_for(loop, 5) == 1
    assert "job-1" not in double.completions
    assert double.lines("job-1")[-1] == "[raibid] the agent shut down; the job will re-run"


async def test_concurrent_loops_run_jobs_side_by_side_exactly_once(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit(pipeline("echo $RAIBID_JOB_ID"))
    for n in range(6):
        double.add_job(job_for(remote, commit, job_id=f"job-{n}"))
    stop = asyncio.Event()
    agent = asyncio.create_task(
        run_agent(double.url, "t", "agent", concurrency=3, workspace_root=tmp_path, stop=stop)
    )
    await eventually(lambda: len(double.completions) == 6, timeout=20, what="all jobs done")

    stop.set()

    assert await asyncio.wait_for(agent, 5) == 6
    for n in range(6):
        assert double.completions[f"job-{n}"] == [Outcome("success", 0).__dict__]
        assert f"job-{n}" in double.lines(f"job-{n}")


async def test_cancelling_the_agent_task_kills_the_step_and_removes_the_workspace(
    double: ProtocolDouble, remote: GitRemote, tmp_path: Path
) -> None:
    double.add_job(job_for(remote, remote.commit(pipeline("sleep 300 & echo $!; wait"))))
    agent = asyncio.create_task(
        run_agent(double.url, "t", "agent-a", once=True, workspace_root=tmp_path / "ws")
    )
    await eventually(lambda: any(x.isdigit() for x in double.lines("job-1")), what="step runs")

    agent.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(agent, 5)
    assert not is_running(int(next(x for x in double.lines("job-1") if x.isdigit())))
    assert list((tmp_path / "ws").iterdir()) == []
    assert "job-1" not in double.completions


async def test_sigterm_stops_an_idle_agent_gracefully(
    double: ProtocolDouble, tmp_path: Path
) -> None:
    agent = asyncio.create_task(
        run_agent(double.url, "t", "agent-a", workspace_root=tmp_path, handle_signals=True)
    )
    # The handlers are installed before the first claim is sent.
    await eventually(lambda: "/agent/claim" in double.requests, what="agent claims")

    os.kill(os.getpid(), signal.SIGTERM)

    assert await asyncio.wait_for(agent, 5) == 0


async def test_an_agent_told_no_job_at_once_backs_off_instead_of_asking_in_a_tight_loop(
    double: ProtocolDouble, tmp_path: Path
) -> None:
    double.claims_answer_at_once = True
    async with AgentClient(double.url, "agent-token") as client:
        worker = worker_for(client, tmp_path / "ws")
        started = time.monotonic()
        loop = asyncio.create_task(worker.run_loop("agent-a", once=True))
        try:
            await eventually(lambda: double.claims >= 4, 20, "four claims")
        finally:
            worker.shutdown()
            assert await loop == 0
    # three pauses between four claims, each at least half its backoff step: 0.25, 0.5, 1 s
    assert time.monotonic() - started >= 1.75
