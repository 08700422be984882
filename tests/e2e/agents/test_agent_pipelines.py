"""A real server and a real agent process build real git repositories: what each pipeline ends as.

One agent serves the whole module; each test builds its own repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent_harness import (
    Server,
    pipeline,
    wait_for_pid,
)
from tests.support.git_remote import GitRemote
from tests.support.processes import children_of, is_running

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

AGENT = "agent-pipelines"


def build_lines(log: list[str]) -> list[str]:
    """The lines the build printed, without the agent's own ``[raibid]`` notes."""
    return [line for line in log if not line.startswith("[raibid]")]


@pytest.fixture(scope="module")
def built(server: Server) -> Iterator[Server]:
    """The server with one agent process waiting for jobs."""
    first = len(server.agents)
    server.start_agent(AGENT)
    yield server
    server.stop_agents(first)


def test_passing_pipeline_ends_success_with_every_line_in_the_log_in_order(
    built: Server, remote: GitRemote
) -> None:
    commit = remote.commit(pipeline(
        {"name": "count", "run": 'for i in $(seq 1 500); do echo "line $i"; done'},
        {"name": "greet", "run": 'echo "$GREETING from $RAIBID_JOB_ID"; echo "to stderr" >&2',
         "env": {"GREETING": "hello"}},
    ))  # fmt: skip
    job_id = built.trigger(remote.url, commit)

    job = built.wait_until_ended(job_id)

    assert (job["status"], job["exit_code"], job["reason"]) == ("success", 0, None), (
        built.diagnostics()
    )
    assert (job["attempt"], job["agent_id"]) == (1, AGENT)
    log = built.log(job_id)
    expected = [f"line {i}" for i in range(1, 501)] + [f"hello from {job_id}", "to stderr"]
    assert build_lines(log) == expected
    assert log.index('[raibid] step count: $ for i in $(seq 1 500); do echo "line $i"; done') < (
        log.index("line 1")
    )
    assert log.index("line 500") < log.index(
        '[raibid] step greet: $ echo "$GREETING from $RAIBID_JOB_ID"; echo "to stderr" >&2'
    )


def test_failing_step_ends_failed_with_its_exit_code_and_later_steps_never_run(
    built: Server, remote: GitRemote
) -> None:
    commit = remote.commit(pipeline(
        {"name": "first", "run": "echo first ran"},
        {"name": "broken", "run": "echo about to fail; exit 3"},
        {"name": "never", "run": "echo never ran"},
    ))  # fmt: skip
    job_id = built.trigger(remote.url, commit)

    job = built.wait_until_ended(job_id)

    assert (job["status"], job["exit_code"]) == ("failed", 3), built.diagnostics()
    log = built.log(job_id)
    assert build_lines(log) == ["first ran", "about to fail"]
    assert "[raibid] step broken failed with exit code 3" in log


def test_step_past_its_timeout_ends_failed_timeout_and_leaves_no_process_behind(
    built: Server, remote: GitRemote, shared: Path
) -> None:
    run = (f"sleep 60 & echo $! > {shared}/child.pid; "
           f"echo $$ > {shared}/step.pid; echo started; wait")  # fmt: skip
    commit = remote.commit(pipeline({"name": "slow", "run": run, "timeout": "1s"}))
    job_id = built.trigger(remote.url, commit)
    step, child = wait_for_pid(shared / "step.pid"), wait_for_pid(shared / "child.pid")

    job = built.wait_until_ended(job_id, within=10)

    assert (job["status"], job["reason"], job["exit_code"]) == ("failed", "timeout", None), (
        built.diagnostics()
    )
    assert job["duration"] < 5
    assert not is_running(step)
    assert not is_running(child)
    assert "[raibid] step slow timed out; its processes were killed" in built.log(job_id)
    [agent] = [a for a in built.agents if a.log.name == f"agent-{AGENT}.log"]
    assert children_of(agent.pid) == []


def test_repository_without_a_pipeline_file_fails_with_no_pipeline(
    built: Server, remote: GitRemote
) -> None:
    commit = remote.commit({"README.md": "no pipeline here\n"})
    job_id = built.trigger(remote.url, commit)

    job = built.wait_until_ended(job_id)

    assert (job["status"], job["reason"]) == ("failed", "no_pipeline"), built.diagnostics()
    assert any(".raibid.yml" in line for line in built.log(job_id))


@pytest.mark.parametrize(
    "content",
    ["steps: [unclosed\n", "", "steps:\n  - name: x\n    run: 'true'\n    colour: red\n"],
    ids=["not YAML", "empty", "unknown key"],
)
def test_repository_with_a_malformed_pipeline_file_fails_with_invalid_pipeline(
    built: Server, remote: GitRemote, content: str
) -> None:
    commit = remote.commit({".raibid.yml": content})
    job_id = built.trigger(remote.url, commit)

    job = built.wait_until_ended(job_id)

    assert (job["status"], job["reason"]) == ("failed", "invalid_pipeline"), built.diagnostics()
    assert any(".raibid.yml" in line for line in built.log(job_id))
