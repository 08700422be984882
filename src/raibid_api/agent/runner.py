"""Running one job on this machine: check out its commit, read its pipeline, run the steps in order.

Knows nothing of HTTP: lines go to a sink, cancellation comes in as an event, and the result is an
`Outcome` the worker reports. Every line, the agent's own notes included, has the job's secrets
(the agent's secrets and the clone URL's credentials) masked.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from raibid_api.agent.lines import DEFAULT_MAX_LINE_BYTES, SecretMasker
from raibid_api.agent.pipeline import Pipeline, PipelineError, Step, load_pipeline
from raibid_api.agent.processes import (
    DEFAULT_KILL_GRACE,
    LineSink,
    OutputOptions,
    StopReason,
    run_in_group,
)
from raibid_api.agent.workspace import (
    CloneError,
    GitRun,
    Workspace,
    clone_at_revision,
    head_commit,
    is_commit,
    url_credentials,
)

Reason = Literal["timeout", "cancelled", "no_pipeline", "invalid_pipeline", "clone_failed"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a build may need from the agent's own environment; nothing else (no agent token) leaks in.
PASSTHROUGH_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "no_proxy",
)  # fmt: skip
GIT_PASSTHROUGH_ENV = ("SSH_AUTH_SOCK", "GIT_SSH_COMMAND")
CommitSink = Callable[[str], Awaitable[None]]
_JOB_ENV = {"id": "JOB_ID", "repo": "REPO", "ref": "REF", "branch": "BRANCH", "tag": "TAG",
            "commit": "COMMIT", "event": "EVENT", "attempt": "ATTEMPT",
            "pull_request": "PULL_REQUEST"}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as the agent reports it to ``complete``."""

    status: Literal["success", "failed"]
    exit_code: int | None = None
    reason: Reason | None = None


SUCCESS = Outcome("success", exit_code=0)


@dataclass(frozen=True)
class JobSpec:
    """What to run: where the code is, and the job's own variables (``RAIBID_JOB_ID`` ...)."""

    job_id: str
    clone_url: str
    revision: str  # the commit's full sha, or the ref to build when the job names no commit
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_job(cls, job: Mapping[str, Any]) -> JobSpec:
        """From the Job JSON; the steps see ``RAIBID_JOB_ID``, ``RAIBID_COMMIT`` ..."""
        env = {
            f"RAIBID_{name}": str(job[key])
            for key, name in _JOB_ENV.items()
            if job.get(key) is not None
        }
        revision = job.get("commit") or job.get("ref")
        return cls(str(job["id"]), str(job["clone_url"]), str(revision), env)


def base_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The minimal environment of a step: a few variables of ``environ`` plus ``CI=true``."""
    source = os.environ if environ is None else environ
    env = {name: source[name] for name in PASSTHROUGH_ENV if name in source}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("LANG", "C.UTF-8")
    env["CI"] = "true"
    return env


@dataclass(frozen=True)
class RunSettings:
    """How this agent runs every job.

    Attributes:
        job_timeout: seconds the whole job may take; also a step's timeout when it sets none.
        secrets: the secrets this agent holds, by name; steps ask for them with ``secret_env``.
        base_env: the environment every step and git start from (see `base_environment`).
        kill_grace: seconds between SIGTERM and SIGKILL of a stopped step's process group.
        max_line_bytes: the longest log line; longer ones are cut and marked.
    """

    job_timeout: float
    secrets: Mapping[str, str] = field(default_factory=dict)
    base_env: Mapping[str, str] = field(default_factory=base_environment)
    kill_grace: float = DEFAULT_KILL_GRACE
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


async def run_job(
    job: JobSpec,
    workspace: Workspace,
    sink: LineSink,
    cancel: asyncio.Event,
    settings: RunSettings,
    on_commit: CommitSink | None = None,
) -> Outcome:
    """Check out the job's commit into ``workspace``, then run its pipeline.

    A job that names a ref rather than a commit builds the commit the ref points to now: it is
    written to the log, handed to ``on_commit`` and given to the steps as ``RAIBID_COMMIT``.
    Never raises for anything the repository or its build does: every such failure is an
    `Outcome` with a reason, explained by a log line on stderr.
    """
    deadline = time.monotonic() + settings.job_timeout
    masker = SecretMasker([*settings.secrets.values(), *url_credentials(job.clone_url)])
    output = OutputOptions(sink, masker, settings.max_line_bytes)
    git = GitRun(_git_env(settings.base_env), output, deadline, cancel, settings.kill_grace)
    try:
        stopped = await clone_at_revision(job.clone_url, job.revision, workspace.checkout, git)
    except CloneError as exc:
        await _note(output, "stderr", f"[raibid] clone failed: {exc.message}")
        return Outcome("failed", reason="clone_failed")
    if stopped:
        return await _stopped(output, "the checkout", stopped)
    env = {**settings.base_env, **job.env, "TMPDIR": str(workspace.tmp)}
    if not is_commit(job.revision):
        env |= await _resolved_commit(job.revision, workspace, git, on_commit)
    try:
        pipeline = await asyncio.to_thread(load_pipeline, workspace.checkout)
        pipeline.check_secrets(settings.secrets)
    except PipelineError as exc:
        await _note(output, "stderr", f"[raibid] {exc.message}")
        return Outcome("failed", reason=exc.reason)
    steps = _StepRun(workspace, env, output, cancel, settings, deadline)
    return await steps.run_all(pipeline)


async def _resolved_commit(
    ref: str, workspace: Workspace, git: GitRun, on_commit: CommitSink | None
) -> dict[str, str]:
    """The commit a ref was checked out at, told to the log and ``on_commit``; its step env."""
    commit = await head_commit(workspace.checkout, git.env)
    if commit is None:
        return {}
    await _note(git.output, "stdout", f"[raibid] {ref} is at commit {commit}")
    if on_commit is not None:
        await on_commit(commit)
    return {"RAIBID_COMMIT": commit}


@dataclass(frozen=True)
class _StepRun:
    workspace: Workspace
    env: Mapping[str, str]
    output: OutputOptions
    cancel: asyncio.Event
    settings: RunSettings
    deadline: float

    async def run_all(self, pipeline: Pipeline) -> Outcome:
        for step in pipeline.steps:
            outcome = await self.run_one(step)
            if outcome is not SUCCESS:
                return outcome
        return SUCCESS

    async def run_one(self, step: Step) -> Outcome:
        step_limit = step.timeout.total_seconds() if step.timeout else float("inf")
        time_limit = min(step_limit, self.deadline - time.monotonic())
        await _note(self.output, "stdout", f"[raibid] step {step.name}: $ {_summary(step.run)}")
        env = {**self.env, **step.env, **{n: self.settings.secrets[n] for n in step.secret_env}}
        result = await run_in_group(
            ["/bin/sh", "-c", step.run],
            cwd=self.workspace.checkout,
            env=env,
            output=self.output,
            time_limit=time_limit,
            cancel=self.cancel,
            kill_grace=self.settings.kill_grace,
        )
        if result.reason:
            return await _stopped(self.output, f"step {step.name}", result.reason)
        if result.exit_code:
            message = f"[raibid] step {step.name} failed with exit code {result.exit_code}"
            await _note(self.output, "stderr", message)
            return Outcome("failed", exit_code=result.exit_code)
        return SUCCESS


def _git_env(base_env: Mapping[str, str]) -> dict[str, str]:
    env = dict(base_env)
    env.update({name: os.environ[name] for name in GIT_PASSTHROUGH_ENV if name in os.environ})
    # A credential prompt would hang the job: fail instead.
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def _summary(command: str) -> str:
    lines = command.strip().splitlines()
    first = lines[0] if lines else ""
    return first + (f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else "")


async def _stopped(output: OutputOptions, what: str, reason: StopReason) -> Outcome:
    why = "timed out" if reason == "timeout" else "was cancelled"
    await _note(output, "stderr", f"[raibid] {what} {why}; its processes were killed")
    return Outcome("failed", reason=reason)


async def _note(output: OutputOptions, stream: Literal["stdout", "stderr"], line: str) -> None:
    await output.sink(stream, output.masker.mask(line))
