"""`serve` in ``dispatch.mode: local`` runs its built-in agent as a child process it looks after."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.agent_harness import (
    local_agents,
    pipeline,
    start_server,
    stop_server,
)
from tests.support.git_remote import GitRemote
from tests.support.polling import eventually_sync
from tests.support.processes import is_running

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def environ_of(pid: int) -> dict[str, str]:
    """The environment ``pid`` was started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
    return {name: value for name, _, value in pairs}


def test_the_built_in_agent_is_a_child_restarted_after_a_crash_and_stopped_with_the_server(
    tmp_path: Path, remote: GitRemote
) -> None:
    commit = remote.commit(pipeline({"name": "hello", "run": "echo built by the child"}))
    server = start_server(
        tmp_path / "local", dispatch={"mode": "local", "local_workspace": str(tmp_path / "ws")}
    )
    try:
        eventually_sync(lambda: len(local_agents(server)) == 1, 20, "the built-in agent to start")
        [first] = local_agents(server)
        # only root may read it: the agent made its process non-dumpable (agent/credentials.py)
        token = environ_of(first).get("RAIBID_AGENT_TOKEN", "") if os.geteuid() == 0 else None
        command_line = Path(f"/proc/{first}/cmdline").read_bytes().decode(errors="replace")

        os.kill(first, signal.SIGKILL)
        seen: list[int] = []

        def restarted() -> bool:
            # one look at the children: the killed agent may still be listed, or none yet
            seen[:] = local_agents(server)
            return len(seen) == 1 and seen != [first]

        eventually_sync(restarted, 20, "the built-in agent to be restarted")
        [second] = seen
        job = server.wait_until_ended(server.trigger(remote.url, commit), within=30)
        log = server.log(str(job["id"]))
    finally:
        stop_server(server)

    if token is not None:
        assert len(token) >= 32
        assert token not in command_line
    assert "--token" not in command_line.split("\0")
    assert (job["status"], job["agent_id"]) == ("success", "local-agent"), server.diagnostics()
    assert "built by the child" in log
    assert "built-in agent exited; restarting" in server.process.output()
    assert not is_running(second)


def test_the_built_in_agent_does_not_outlive_a_killed_server(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "local", dispatch={"mode": "local", "local_workspace": str(tmp_path / "ws")}
    )
    try:
        eventually_sync(lambda: len(local_agents(server)) == 1, 20, "the built-in agent to start")
        [agent] = local_agents(server)
        server.process.popen.send_signal(signal.SIGKILL)
        server.process.popen.wait()
        eventually_sync(lambda: not is_running(agent), 20, "the built-in agent to end")
    finally:
        stop_server(server)
