"""SIGTERM mid-build: the running job goes back to the queue at once, as its next attempt.

The server hands back the jobs of its built-in agent and ends live log streams with a `retry`
hint, within `server.shutdown_grace`; a remote agent hands back its own job the same way.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.agent_harness import (
    Server,
    local_agents,
    pipeline,
    start_server,
    stop_server,
    wait_for_pid,
)
from tests.support.git_remote import GitRemote
from tests.support.polling import eventually_sync
from tests.support.processes import is_running

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

GRACE_S = 10.0
LONG_LEASE = {"lease": "120s", "reaper_interval": "500ms", "max_attempts": 3}


def first_attempt_hangs(pid_file: Path) -> dict[str, str]:
    """A pipeline whose first attempt runs until killed (its pid in ``pid_file``), then passes."""
    run = (f'if [ "$RAIBID_ATTEMPT" = 1 ]; then sleep 300 & echo $! > {pid_file}; wait; fi; '
           'echo "built on attempt $RAIBID_ATTEMPT"')  # fmt: skip
    return pipeline({"name": "build", "run": run})


def sigterm_and_time(server: Server) -> tuple[int, float]:
    """SIGTERM the server process; its exit code and the seconds it took to exit."""
    started = time.monotonic()
    server.process.popen.send_signal(signal.SIGTERM)
    try:
        code = server.process.popen.wait(timeout=GRACE_S + 20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not exit:\n{server.diagnostics()}")
    return code, time.monotonic() - started


def test_sigterm_hands_the_built_in_agents_job_back_and_the_next_server_runs_it(
    tmp_path: Path, remote: GitRemote, shared: Path
) -> None:
    commit = remote.commit(first_attempt_hangs(shared / "step.pid"))
    folder = tmp_path / "local"
    sections = {
        "server": {"shutdown_grace": f"{GRACE_S:g}s"},
        "dispatch": {"mode": "local", "local_workspace": str(tmp_path / "ws")},
        # a lease far longer than the test: only a hand-back can requeue the job in time
        "jobs": LONG_LEASE,
    }
    first = start_server(folder, **sections)
    try:
        job_id = first.trigger(remote.url, commit)
        step = wait_for_pid(shared / "step.pid", within=30)
        [agent] = local_agents(first)
        code, took = sigterm_and_time(first)
    finally:
        stop_server(first)
    assert code == 0, first.diagnostics()
    assert took <= GRACE_S, first.diagnostics()
    assert "Traceback" not in first.process.output()
    assert not is_running(step)
    assert not is_running(agent)

    second = start_server(folder, **sections)
    try:
        job = second.wait_until_ended(job_id, within=40)
        log = second.log(job_id)
    finally:
        stop_server(second)
    assert (job["status"], job["attempt"]) == ("success", 2), second.diagnostics()
    handed_back = (
        "[raibid] attempt 2: the agent of attempt 1 (local-agent) handed the job back as it "
        "shut down; the job is queued again"
    )
    assert handed_back in log
    assert (
        "[raibid] the agent is shutting down: its steps were killed, the job is handed back"
        in (log[: log.index(handed_back)])
    )
    assert "built on attempt 2" in log


@pytest.mark.parametrize("path", ["/jobs/{job}/logs", "/events", "/events?jobs={job}"])
def test_sigterm_ends_a_live_stream_with_a_retry_hint(tmp_path: Path, path: str) -> None:
    server = start_server(tmp_path / "sse", server={"shutdown_grace": f"{GRACE_S:g}s"})
    try:
        job_id = server.trigger("https://git.example.test/acme/app.git", "a" * 40)
        accept = {"Accept": "text/event-stream"}
        with server.http.stream("GET", path.format(job=job_id), headers=accept) as stream:
            chunks = stream.iter_bytes()
            received = next(chunks)
            assert received.startswith(b"retry: 3000\n\n"), received
            # a pending job's stream waits for its next entry: the server stops meanwhile
            code, took = sigterm_and_time(server)
            received += b"".join(chunks)
    finally:
        stop_server(server)
    assert code == 0, server.diagnostics()
    assert took <= GRACE_S
    assert received.endswith(b": server shutting down; reconnect\n\nretry: 500\n\n"), received


def test_a_remote_agent_sigtermed_mid_build_hands_its_job_back(
    server: Server, remote: GitRemote, shared: Path
) -> None:
    job_id = server.trigger(remote.url, remote.commit(first_attempt_hangs(shared / "step.pid")))
    agent = server.start_agent("leaving")
    step = wait_for_pid(shared / "step.pid")

    agent.popen.send_signal(signal.SIGTERM)
    assert agent.popen.wait(timeout=15) == 0, agent.output()

    assert not is_running(step)
    log = server.log(job_id)
    assert (
        "[raibid] attempt 2: the agent of attempt 1 (leaving) handed the job back as it shut "
        "down; the job is queued again"
    ) in log, server.diagnostics()
    server.start_agent("staying")
    job = server.wait_until_ended(job_id, within=30)
    assert (job["status"], job["attempt"], job["agent_id"]) == ("success", 2, "staying")
    eventually_sync(lambda: "built on attempt 2" in server.log(job_id), 5, "the second log")
