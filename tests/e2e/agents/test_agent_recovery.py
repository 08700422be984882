"""Stopping builds that should stop, and finishing builds whose agent died: cancel, SIGKILL."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.agent_harness import (
    AGENT_TOKEN,
    LEASE_SECONDS,
    Process,
    Server,
    pipeline,
    spawn,
    wait_for_pid,
    wait_until_gone,
)
from tests.support.git_remote import GitRemote
from tests.support.polling import eventually_sync
from tests.support.processes import kill_group_of, read_pid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

HEARTBEAT = LEASE_SECONDS / 3
CANCEL_BUDGET = 2.0


def heartbeat_stamps(server: Server, agent_id: str, job_id: str, count: int) -> list[float]:
    """The first ``count`` moments (epoch seconds) `GET /agents` shows the agent holding the job."""
    stamps: list[float] = []

    def seen_enough() -> bool:
        agent = server.agents_seen().get(agent_id, {})
        if agent.get("job_id") == job_id:
            stamp = datetime.fromisoformat(str(agent["last_seen"])).timestamp()
            if stamp not in stamps:
                stamps.append(stamp)
        return len(stamps) >= count

    eventually_sync(seen_enough, HEARTBEAT * (count + 2), f"{count} sightings of {agent_id}")
    return stamps


def test_agent_heartbeats_every_third_of_the_lease_and_cancel_kills_the_step_within_2s(
    server: Server, remote: GitRemote, shared: Path
) -> None:
    server.start_agent("agent-cancel")
    run = f"sleep 60 & echo $! > {shared}/child.pid; echo $$ > {shared}/step.pid; wait"
    job_id = server.trigger(remote.url, remote.commit(pipeline({"name": "long", "run": run})))
    step, child = wait_for_pid(shared / "step.pid"), wait_for_pid(shared / "child.pid")

    # the claim is the first sighting, each heartbeat one more
    stamps = heartbeat_stamps(server, "agent-cancel", job_id, 4)
    cancelled_at = time.monotonic()
    answer = server.http.post(f"/jobs/{job_id}/cancel")
    wait_until_gone([step, child], within=CANCEL_BUDGET + 3)
    took = time.monotonic() - cancelled_at

    beats = [later - earlier for earlier, later in itertools.pairwise(stamps[1:])]
    assert all(HEARTBEAT * 0.8 <= beat <= HEARTBEAT * 1.5 for beat in beats), beats
    assert answer.status_code == 200
    assert took <= CANCEL_BUDGET, f"the step outlived its cancel by {took:.2f}s"
    note = "[raibid] step long was cancelled; its processes were killed"
    eventually_sync(lambda: note in server.log(job_id), LEASE_SECONDS, "the agent's last lines")
    job = server.job(job_id)
    assert (job["status"], job["reason"]) == ("cancelled", "cancelled")


def recording_agent(server: Server, agent_id: str, record: Path) -> Process:
    """Start the reference agent in a process that writes down the job tokens it gets."""
    argv = [sys.executable, "-m", "tests.support.recording_agent", server.url, AGENT_TOKEN,
            agent_id, str(server.folder / "workspaces"), str(record)]  # fmt: skip
    return server.adopt(spawn(argv, server.folder / f"agent-{agent_id}.log", server.folder))


def first_token(record: Path) -> str:
    """The job token the recording agent was handed first."""
    notes = [json.loads(line) for line in record.read_text().splitlines()]
    return str(notes[0]["token"])


def test_agent_killed_mid_job_has_the_job_rerun_by_another_and_its_late_calls_refused(
    server: Server, remote: GitRemote, shared: Path, tmp_path: Path
) -> None:
    record = tmp_path / "tokens.jsonl"
    # each attempt says it started, writes its pid, and waits for the test's go before it ends
    run = (f'echo "attempt $RAIBID_ATTEMPT starts"; '
           f"echo $$ > {shared}/attempt-$RAIBID_ATTEMPT.pid; "
           f"while [ ! -f {shared}/go-$RAIBID_ATTEMPT ]; do sleep 0.05; done; "
           f'echo "attempt $RAIBID_ATTEMPT ends"')  # fmt: skip
    doomed = recording_agent(server, "agent-doomed", record)
    job_id = server.trigger(remote.url, remote.commit(pipeline({"name": "work", "run": run})))
    first_step = wait_for_pid(shared / "attempt-1.pid")
    try:
        eventually_sync(
            lambda: "attempt 1 starts" in server.log(job_id), 5, "attempt 1's first line"
        )
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.popen.wait()
        server.start_agent("agent-rescuer")

        wait_for_pid(shared / "attempt-2.pid", within=LEASE_SECONDS + 15)
        # attempt 2 now waits for its go, silent: its log holds still while the late calls come
        eventually_sync(
            lambda: "attempt 2 starts" in server.log(job_id), 5, "attempt 2's first line"
        )
        running = server.job(job_id)
        log_before = server.log(job_id)
        token = first_token(record)
        late = [
            server.job_call(job_id, "heartbeat", token, None),
            server.job_call(job_id, "logs", token, {"offset": 1, "lines": ["late line"]}),
            server.job_call(job_id, "complete", token, {"status": "success", "exit_code": 0}),
        ]
        after_late = (server.job(job_id), server.log(job_id))
        (shared / "go-2").touch()
        job = server.wait_until_ended(job_id)
    finally:
        kill_group_of(first_step)

    assert (running["status"], running["attempt"], running["agent_id"]) == (
        "running", 2, "agent-rescuer",
    )  # fmt: skip
    for response in late:
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_job_token"
    assert after_late == (running, log_before)
    assert (job["status"], job["attempt"], job["agent_id"]) == ("success", 2, "agent-rescuer"), (
        server.diagnostics()
    )
    log = server.log(job_id)
    assert "late line" not in log
    assert "attempt 1 ends" not in log
    assert (
        log.index("attempt 1 starts") < log.index("attempt 2 starts") < log.index("attempt 2 ends")
    )
    assert read_pid(shared / "attempt-1.pid") == first_step
