"""A cancel reaches the running steps at once, on a remote agent and on the built-in one.

The lease is three minutes, so an agent's heartbeat is held for a minute at a time: the tests
wait at most half of that for the step's process group to be gone. Only the held heartbeat,
answered when the job's status changes, can bring the cancel that soon.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent_harness import (
    Server,
    pipeline,
    start_server,
    stop_server,
    wait_for_pid,
)
from tests.support.git_remote import GitRemote
from tests.support.polling import eventually_sync
from tests.support.processes import is_running

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

LEASE = "180s"  # heartbeats held 60 s each
WITHIN_S = 30.0  # half a heartbeat: the step must be gone by then


def group_is_gone(pgid: int) -> bool:
    """Whether no live process of the group led by ``pgid`` is left."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[2] == str(pgid) and fields[0] not in {"Z", "X"}:
            return False
    return True


@pytest.fixture(params=["remote", "built-in"])
def long_lease_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server with a 3-minute lease and its agent: a `raibid-api agent`, or its own."""
    local = request.param == "built-in"
    dispatch = {"mode": "local", "local_workspace": str(tmp_path / "ws")} if local else None
    server = start_server(
        tmp_path / "server", jobs={"lease": LEASE, "reaper_interval": "1s"},
        **({"dispatch": dispatch} if dispatch else {}),
    )  # fmt: skip
    if not local:
        server.start_agent("remote-1")
    try:
        yield server
    finally:
        stop_server(server)


def test_a_cancel_kills_the_running_step_long_before_the_next_heartbeat(
    long_lease_server: Server, remote: GitRemote, shared: Path
) -> None:
    server = long_lease_server
    loop = f"echo $$ > {shared}/pgid; while true; do echo tick; sleep 0.1; done"
    remote.commit(pipeline({"name": "loop", "run": loop}))
    job_id = server.trigger_branch(remote.url)
    pgid = wait_for_pid(shared / "pgid", within=30)
    eventually_sync(lambda: "tick" in server.log(job_id), 10, "the step to print")

    cancelled = server.http.post(f"/jobs/{job_id}/cancel")
    eventually_sync(lambda: group_is_gone(pgid), WITHIN_S, "the step's process group to be gone")

    assert cancelled.status_code == 200, cancelled.text
    assert not is_running(pgid)
    eventually_sync(
        lambda: "[raibid] step loop was cancelled; its processes were killed" in server.log(job_id),
        10, "the agent to say the step was cancelled",
    )  # fmt: skip
    assert server.job(job_id)["status"] == "cancelled", server.diagnostics()
