"""A manual job on a branch shows the commit its agent checked out, while it runs and after."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.agent_harness import Server, pipeline
from tests.support.git_remote import GitRemote
from tests.support.polling import eventually_sync

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def test_a_branch_job_records_the_commit_it_built_as_soon_as_it_checked_it_out(
    server: Server, remote: GitRemote, shared: Path
) -> None:
    # the step waits for the test's go-ahead, so the job is seen running
    wait = (f"touch {shared}/started; i=0; "
            f"while [ ! -f {shared}/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
            'echo "built $RAIBID_COMMIT"')  # fmt: skip
    head = remote.commit(pipeline({"name": "wait", "run": wait}))
    server.start_agent("branch-1")

    job_id = server.trigger_branch(remote.url)
    eventually_sync(lambda: (shared / "started").exists(), 30, "the step to start")
    running = server.job(job_id)
    remote.commit(pipeline({"name": "later", "run": "true"}))  # the branch moves on meanwhile
    (shared / "go").touch()
    ended = server.wait_until_ended(job_id)

    assert (running["status"], running["commit"]) == ("running", head)
    assert (ended["status"], ended["commit"]) == ("success", head), server.diagnostics()
    assert f"built {head}" in server.log(job_id)
    assert f"[raibid] refs/heads/main is at commit {head}" in server.log(job_id)
