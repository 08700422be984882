"""The built-in agent of ``dispatch.mode: local``: a ``raibid-api agent`` child process, kept up.

It runs in its own process, not on the server's event loop, so builds never slow the intake. It
speaks the agent protocol over HTTP to the address the server bound, with a token made for it and
passed through the environment (never the command line, which ``ps`` shows). It dies with the
server (``PR_SET_PDEATHSIG``) and is restarted with backoff when it exits on its own. When the
server stops, `hand_back` sends it SIGTERM while the server still listens: the agent kills its
running steps and hands each job back (``release``), so the jobs are queued again at once; one
that does not exit in time gets SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from raibid_api.agent.client import RetryPolicy
from raibid_api.agent.runner import GIT_PASSTHROUGH_ENV, PASSTHROUGH_ENV
from raibid_api.embedded import die_with_parent

_log = structlog.get_logger("raibid_api.local_agent")

_HEALTHY_S = 30.0  # a child that ran this long starts the restart backoff afresh
_KILL_AFTER_S = 10.0  # between SIGTERM (kill the steps, hand the jobs back) and SIGKILL
# What the child takes from the server's environment: what its steps and git may be given, and
# where Python finds this package; never the server's own configuration (RAIBID_*: the Redis URL,
# webhook secrets, forge tokens), which a build could read from the agent's /proc/<pid>/environ.
CHILD_ENV = (*PASSTHROUGH_ENV, *GIT_PASSTHROUGH_ENV, "PYTHONPATH", "TMPDIR")


@dataclass(frozen=True)
class LocalAgentSpec:
    """What the child runs: where the server is, its name and token, how many jobs at once."""

    server_url: str
    token: str
    agent_id: str
    concurrency: int
    workspace: Path
    job_timeout_s: float

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The child's environment: `CHILD_ENV` of ``environ``, and its token.

        The token goes in the environment, where the ``agent`` command reads it (its envvar):
        an argument would show in ``ps``.
        """
        kept = {name: environ[name] for name in CHILD_ENV if name in environ}
        return kept | {"RAIBID_AGENT_TOKEN": self.token}

    def argv(self) -> list[str]:
        """The child's command line (no secret on it)."""
        return [
            sys.executable, "-m", "raibid_api", "agent", "--server", self.server_url,
            "--agent-id", self.agent_id, "--concurrency", str(self.concurrency),
            "--workspace", str(self.workspace), "--job-timeout", f"{self.job_timeout_s:g}s",
        ]  # fmt: skip


class LocalAgentProcess:
    """Runs the child and keeps it running until cancelled; `pid` is the current child's."""

    def __init__(self, spec: LocalAgentSpec, backoff: RetryPolicy | None = None) -> None:
        self._spec = spec
        self._backoff = backoff or RetryPolicy(initial=1.0, maximum=30.0)
        self._process: asyncio.subprocess.Process | None = None
        self._handed_back = False

    @property
    def pid(self) -> int | None:
        """The running child's pid, or None."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def run(self) -> None:
        """Start the child, restart it whenever it exits; stop it when cancelled."""
        delays = self._backoff.delays()
        while not self._handed_back:
            started = time.monotonic()
            self._process = process = await self._start()
            _log.info("built-in agent started", pid=process.pid, url=self._spec.server_url)
            try:
                code = await process.wait()
            except asyncio.CancelledError:
                await asyncio.shield(_stop(process, _KILL_AFTER_S))
                raise
            if self._handed_back:
                return
            if time.monotonic() - started >= _HEALTHY_S:
                delays = self._backoff.delays()
            delay = next(delays)
            _log.warning("built-in agent exited; restarting", exit_code=code,
                         restart_in_s=round(delay, 1))  # fmt: skip
            await asyncio.sleep(delay)  # the restart backoff

    async def hand_back(self, within: float) -> None:
        """Stop the child for good: its running jobs are handed back to the queue.

        It gets SIGTERM (it kills its steps and releases its jobs over HTTP, so the server must
        still be listening), and SIGKILL if it has not exited within ``within`` seconds; it is
        not restarted.
        """
        self._handed_back = True
        process = self._process
        if process is not None:
            await _stop(process, within)

    async def _start(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self._spec.argv(), env=self._spec.environment(os.environ),
            stdin=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent,
        )  # fmt: skip


async def _stop(process: asyncio.subprocess.Process, within: float) -> None:
    """SIGTERM (kill the running steps, hand the jobs back), then SIGKILL after ``within`` s."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), within)
    if process.returncode is None:
        _log.warning("built-in agent did not stop; killing it", pid=process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    _log.info("built-in agent stopped", exit_code=process.returncode)
