"""Several agents on one queue, and the one-machine mode where `serve` runs its own agent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.agent_harness import TERMINAL, Server, pipeline, start_server, stop_server
from tests.support.git_remote import GitRemote
from tests.support.polling import eventually_sync

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

AGENTS = ("fleet-1", "fleet-2", "fleet-3")
JOBS = 30


def statuses(server: Server, job_ids: list[str]) -> dict[str, str]:
    """The status of each of ``job_ids``, read with one `GET /jobs`."""
    page = server.http.get("/jobs", params={"limit": 200}).json()
    return {job["id"]: job["status"] for job in page["jobs"] if job["id"] in job_ids}


def test_three_agents_run_thirty_jobs_each_exactly_once(
    server: Server, remote: GitRemote, shared: Path
) -> None:
    # every run of a job appends its attempt number to a file named after the job
    run = f'echo "$RAIBID_ATTEMPT" >> {shared}/$RAIBID_JOB_ID; echo "ran $RAIBID_JOB_ID"'
    commit = remote.commit(pipeline({"name": "mark", "run": run}))
    for agent_id in AGENTS:
        server.start_agent(agent_id)
    eventually_sync(lambda: set(AGENTS) <= set(server.agents_seen()), 20, "every agent to claim")

    job_ids = [server.trigger(remote.url, commit) for _ in range(JOBS)]
    eventually_sync(
        lambda: (
            set(statuses(server, job_ids).values()) <= TERMINAL
            and len(statuses(server, job_ids)) == JOBS
        ),
        60,
        "every job to end",
    )

    jobs = [server.job(job_id) for job_id in job_ids]
    assert [(j["status"], j["attempt"]) for j in jobs] == [("success", 1)] * JOBS, (
        server.diagnostics()
    )
    assert sorted(path.name for path in shared.iterdir()) == sorted(job_ids)
    assert {(shared / job_id).read_text() for job_id in job_ids} == {"1\n"}
    assert {job["agent_id"] for job in jobs} == set(AGENTS)
    assert all(f"ran {job_id}" in server.log(job_id) for job_id in job_ids)
    assert server.http.get("/queue").json() == {
        "depth": 0, "claimed": 0, "oldest_waiting_seconds": None,
    }  # fmt: skip


def test_serve_in_local_mode_turns_a_manual_trigger_into_a_finished_build(
    tmp_path: Path, remote: GitRemote
) -> None:
    workspaces = tmp_path / "local-workspaces"
    commit = remote.commit(pipeline({"name": "hello", "run": "echo built by serve alone"}))
    server = start_server(
        tmp_path / "local", dispatch={"mode": "local", "local_workspace": str(workspaces)}
    )
    try:
        started = time.monotonic()
        job_id = server.trigger(remote.url, commit)
        job = server.wait_until_ended(job_id, within=20)
        took = time.monotonic() - started
        log = server.log(job_id)
        seen = server.agents_seen()
    finally:
        stop_server(server)

    assert (job["status"], job["exit_code"]) == ("success", 0), server.diagnostics()
    assert job["agent_id"] == "local-agent"
    assert "built by serve alone" in log
    assert set(seen) == {"local-agent"}
    assert list(workspaces.iterdir()) == []
    assert took < 10
