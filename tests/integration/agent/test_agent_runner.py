"""Running a job for real: git clones from bare repositories, steps as real process groups."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from raibid_api.agent.runner import JobSpec, Outcome, RunSettings, base_environment, run_job
from raibid_api.agent.workspace import job_workspace
from tests.support.git_remote import GitRemote, git
from tests.support.polling import eventually
from tests.support.processes import is_running
from tests.support.protocol_double import LineCollector

FAST = RunSettings(job_timeout=30.0, kill_grace=0.5)


async def run(
    remote: GitRemote,
    commit: str,
    tmp_path: Path,
    *,
    cancel: asyncio.Event | None = None,
    sink: LineCollector | None = None,
    **settings: Any,
) -> tuple[Outcome, LineCollector]:
    collected = sink or LineCollector()
    options = dataclasses.replace(FAST, **settings)
    spec = JobSpec("job-1", remote.url, commit, {"RAIBID_JOB_ID": "job-1"})
    async with job_workspace(tmp_path / "workspaces", "job-1") as workspace:
        outcome = await run_job(spec, workspace, collected, cancel or asyncio.Event(), options)
    return outcome, collected


def pipeline(*steps: str) -> dict[str, str]:
    return {".raibid.yml": "steps:\n" + "".join(steps)}


async def test_passing_pipeline_succeeds_with_every_line_in_order(
    remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit(pipeline(
        "  - {name: one, run: 'echo first; echo second'}\n",
        "  - {name: two, run: 'cat data.txt'}\n",
    ) | {"data.txt": "third\n"})  # fmt: skip

    outcome, lines = await run(remote, commit, tmp_path)

    assert outcome == Outcome("success", exit_code=0)
    output = [line for line in lines.lines("stdout") if not line.startswith("[raibid]")]
    assert output == ["first", "second", "third"]


async def test_job_without_a_commit_builds_the_head_of_its_ref(
    remote: GitRemote, tmp_path: Path
) -> None:
    remote.commit(pipeline("  - {name: old, run: 'echo old'}\n"))
    remote.commit(pipeline("  - {name: new, run: 'echo new'}\n"))

    outcome, lines = await run(remote, "refs/heads/main", tmp_path)

    assert outcome == Outcome("success", exit_code=0)
    assert [line for line in lines.lines("stdout") if not line.startswith("[raibid]")] == ["new"]


async def test_revision_that_is_neither_sha_nor_ref_fails_the_clone(
    remote: GitRemote, tmp_path: Path
) -> None:
    remote.commit(pipeline("  - {name: one, run: 'echo one'}\n"))

    outcome, _ = await run(remote, "--upload-pack=touch /tmp/x", tmp_path)

    assert (outcome.status, outcome.reason) == ("failed", "clone_failed")


async def test_failing_step_stops_the_pipeline_with_its_exit_code(
    remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit(pipeline(
        "  - {name: build, run: 'echo building; exit 3'}\n",
        "  - {name: never, run: 'echo must-not-run'}\n",
    ))  # fmt: skip

    outcome, lines = await run(remote, commit, tmp_path)

    assert outcome == Outcome("failed", exit_code=3)
    assert "building" in lines.lines()
    assert "must-not-run" not in lines.lines()
    assert "[raibid] step build failed with exit code 3" in lines.lines("stderr")


async def test_step_past_its_timeout_is_killed_with_its_background_children(
    remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit(pipeline(
        "  - name: slow\n    timeout: 1s\n    run: 'sleep 300 & echo $!; sleep 300'\n",
    ))  # fmt: skip

    started = time.monotonic()
    outcome, lines = await run(remote, commit, tmp_path)

    assert outcome == Outcome("failed", reason="timeout")
    assert time.monotonic() - started < 10
    child = int(next(line for line in lines.lines("stdout") if line.isdigit()))
    assert not is_running(child)


async def test_job_timeout_bounds_a_step_without_its_own(remote: GitRemote, tmp_path: Path) -> None:
    commit = remote.commit(pipeline("  - {name: slow, run: 'sleep 300'}\n"))

    outcome, _ = await run(remote, commit, tmp_path, job_timeout=1.5)

    assert outcome == Outcome("failed", reason="timeout")


async def test_cancel_kills_the_running_step_within_two_seconds(
    remote: GitRemote, tmp_path: Path
) -> None:
    # The shell ignores SIGTERM, so only the SIGKILL after the grace ends it.
    commit = remote.commit(pipeline(
        "  - {name: stubborn, run: \"trap '' TERM; sleep 300 & echo $!; wait\"}\n",
    ))  # fmt: skip
    cancel, lines = asyncio.Event(), LineCollector()
    job = asyncio.create_task(run(remote, commit, tmp_path, cancel=cancel, sink=lines))
    await eventually(lambda: any(line.isdigit() for line in lines.lines()), what="child pid")

    cancel.set()
    asked = time.monotonic()
    outcome, _ = await job

    assert time.monotonic() - asked < 2.0
    assert outcome == Outcome("failed", reason="cancelled")
    child = int(next(line for line in lines.lines() if line.isdigit()))
    assert not is_running(child)


async def test_background_process_left_by_a_passing_step_does_not_outlive_it(
    remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit(
        pipeline("  - {name: leak, run: 'sleep 300 > /dev/null 2>&1 & echo $!'}\n")
    )

    outcome, lines = await run(remote, commit, tmp_path)

    assert outcome.status == "success"
    assert not is_running(int(next(line for line in lines.lines() if line.isdigit())))


async def test_secret_values_are_masked_in_every_line(remote: GitRemote, tmp_path: Path) -> None:
    commit = remote.commit(pipeline(
        "  - name: deploy\n    secret_env: [DEPLOY_TOKEN]\n"
        "    run: 'echo token=$DEPLOY_TOKEN; echo \"$DEPLOY_TOKEN\" >&2; echo s3cr3t-value'\n",
    ))  # fmt: skip

    outcome, lines = await run(remote, commit, tmp_path, secrets={"DEPLOY_TOKEN": "s3cr3t-value"})

    assert outcome.status == "success"
    assert not any("s3cr3t" in line for line in lines.lines())
    assert "token=***" in lines.lines("stdout")
    assert "***" in lines.lines("stderr")


async def test_stdout_and_stderr_lines_keep_their_order_per_stream(
    remote: GitRemote, tmp_path: Path
) -> None:
    script = "i=0; while [ $i -lt 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
    commit = remote.commit(pipeline(f"  - name: chatty\n    run: '{script}'\n"))

    outcome, lines = await run(remote, commit, tmp_path)

    assert outcome.status == "success"
    assert [x for x in lines.lines("stdout") if x.startswith("out")] == [
        f"out{i}" for i in range(2000)
    ]
    assert lines.lines("stderr") == [f"err{i}" for i in range(2000)]


async def test_step_sees_its_env_over_a_minimal_base_without_agent_variables(
    remote: GitRemote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAIBID_TOKEN", "agent-token-value")
    commit = remote.commit(pipeline(
        "  - name: env\n    env: {GREETING: hello, PORT: 8080}\n"
        "    run: 'echo $GREETING $PORT $CI $RAIBID_JOB_ID; echo token=${RAIBID_TOKEN:-unset}'\n",
    ))  # fmt: skip

    outcome, lines = await run(remote, commit, tmp_path, base_env=base_environment())

    assert outcome.status == "success"
    assert "hello 8080 true job-1" in lines.lines("stdout")
    assert "token=unset" in lines.lines("stdout")


async def test_overlong_output_line_is_cut_to_the_cap(remote: GitRemote, tmp_path: Path) -> None:
    commit = remote.commit(
        pipeline("  - {name: wide, run: 'head -c 100000 /dev/zero | tr \"\\\\0\" x; echo'}\n")
    )

    outcome, lines = await run(remote, commit, tmp_path, max_line_bytes=1024)

    assert outcome.status == "success"
    wide = next(line for line in lines.lines("stdout") if line.startswith("xxx"))
    assert len(wide.encode()) <= 1024
    assert wide.endswith("[raibid: line truncated]")


async def test_repository_without_pipeline_fails_with_no_pipeline(
    remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit({"README": "no pipeline here\n"})

    outcome, lines = await run(remote, commit, tmp_path)

    assert outcome == Outcome("failed", reason="no_pipeline")
    assert any(".raibid.yml" in line for line in lines.lines("stderr"))


async def test_malformed_pipeline_fails_with_invalid_pipeline(
    remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit({".raibid.yml": "steps:\n  - name: x\n    runn: make\n"})

    outcome, lines = await run(remote, commit, tmp_path)

    assert outcome == Outcome("failed", reason="invalid_pipeline")
    assert any("steps.0.runn: unknown key" in line for line in lines.lines("stderr"))


async def test_pipeline_asking_for_a_secret_the_agent_lacks_is_invalid(
    remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit(pipeline("  - {name: x, run: 'true', secret_env: [MISSING]}\n"))

    outcome, lines = await run(remote, commit, tmp_path)

    assert outcome == Outcome("failed", reason="invalid_pipeline")
    assert any("MISSING" in line for line in lines.lines("stderr"))


async def test_checkout_is_at_the_job_commit_not_the_branch_tip(
    remote: GitRemote, tmp_path: Path
) -> None:
    old = remote.commit(pipeline("  - {name: v, run: 'cat version'}\n") | {"version": "one\n"})
    remote.commit({"version": "two\n"})

    outcome, lines = await run(remote, old, tmp_path)

    assert outcome.status == "success"
    assert "one" in lines.lines("stdout")
    assert "two" not in lines.lines("stdout")


async def test_server_refusing_fetch_by_sha_falls_back_to_full_history(
    remote: GitRemote, tmp_path: Path
) -> None:
    old = remote.commit(pipeline("  - {name: v, run: 'cat version'}\n") | {"version": "one\n"})
    remote.commit({"version": "two\n"})
    git(remote.bare, "config", "uploadpack.allowReachableSHA1InWant", "false")
    # Protocol v0 makes the server refuse a commit that is not a branch tip.
    v0 = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "protocol.version",
        "GIT_CONFIG_VALUE_0": "0",
    }

    outcome, lines = await run(remote, old, tmp_path, base_env=base_environment() | v0)

    assert outcome.status == "success"
    assert any("fetching all history" in line for line in lines.lines())
    assert "one" in lines.lines("stdout")


async def test_unknown_commit_fails_with_clone_failed(remote: GitRemote, tmp_path: Path) -> None:
    remote.commit(pipeline("  - {name: x, run: 'true'}\n"))

    outcome, lines = await run(remote, "0" * 40, tmp_path)

    assert outcome == Outcome("failed", reason="clone_failed")
    assert any("clone failed" in line for line in lines.lines("stderr"))


async def test_clone_failure_never_shows_url_credentials(tmp_path: Path) -> None:
    url = "http://robot:hunter2-token@127.0.0.1:9/acme/app.git"
    spec = JobSpec("job-1", url, "a" * 40)
    lines = LineCollector()
    async with job_workspace(tmp_path / "ws", "job-1") as workspace:
        outcome = await run_job(spec, workspace, lines, asyncio.Event(), FAST)

    assert outcome == Outcome("failed", reason="clone_failed")
    assert lines.lines()
    assert not any("hunter2" in line or "robot" in line for line in lines.lines())


async def test_workspace_is_removed_even_when_the_build_made_it_read_only(
    remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit(pipeline(
        "  - {name: lock, run: 'mkdir -p cache/sub && touch cache/sub/f && chmod -R a-w cache'}\n",
    ))  # fmt: skip

    outcome, _ = await run(remote, commit, tmp_path)

    assert outcome.status == "success"
    assert list((tmp_path / "workspaces").iterdir()) == []


async def test_agent_without_git_fails_the_clone_with_a_clear_line(
    remote: GitRemote, tmp_path: Path
) -> None:
    commit = remote.commit(pipeline("  - {name: x, run: 'true'}\n"))
    no_git = {"PATH": str(tmp_path / "empty-bin")}

    outcome, lines = await run(remote, commit, tmp_path, base_env=no_git)

    assert outcome == Outcome("failed", reason="clone_failed")
    assert "[raibid] clone failed: git is not installed on this agent" in lines.lines("stderr")
