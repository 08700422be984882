"""The reference agent's loop: claim a job, run it while heartbeating, ship its logs, report it.

`run_agent` is the entry point of ``raibid-api agent`` and of the agent that ``serve`` starts
beside itself in ``dispatch.mode: local``. On shutdown (SIGTERM, or the ``stop`` event) no new job
is claimed and a running job gets ``shutdown_grace`` seconds to finish; after that (or on a second
signal) its steps are killed and it is left unreported, so the server re-queues it when its lease
runs out: an agent going away is not the build's failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog

from raibid_api.agent.client import (
    AgentClient,
    AgentProtocolError,
    ClaimedJob,
    LeaseLostError,
    RetryPolicy,
)
from raibid_api.agent.lease import JobState, keep_lease, record_commit
from raibid_api.agent.log_shipper import LogShipper
from raibid_api.agent.processes import DEFAULT_KILL_GRACE
from raibid_api.agent.runner import JobSpec, Outcome, RunSettings, run_job
from raibid_api.agent.workspace import Workspace, job_workspace
from raibid_api.errors import ServiceUnavailableError

logger = structlog.get_logger()


@dataclass(frozen=True)
class AgentOptions:
    """How one agent process works.

    Attributes:
        agent_id: the name the server knows this agent by (``-1``, ``-2`` ... per loop when
            several run).
        workspace_root: where job workspaces are created (each removed after its job).
        run: how steps run (job timeout, secrets, base environment, kill grace).
        labels: sent with every claim.
        claim_wait: seconds one claim long-polls.
        heartbeat_interval: how long one heartbeat is held open by the server, which answers
            earlier when the job is cancelled or ends; None for a third of the lease.
        shutdown_grace: seconds a running job may go on after shutdown was asked.
        flush_timeout: seconds to ship the last log lines before reporting anyway.
        complete_deadline: seconds to keep retrying ``complete``.
    """

    agent_id: str
    workspace_root: Path
    run: RunSettings
    labels: tuple[str, ...] = ()
    claim_wait: float = 30.0
    heartbeat_interval: float | None = None
    shutdown_grace: float = 20.0
    flush_timeout: float = 30.0
    complete_deadline: float = 120.0


class AgentWorker:
    """Runs claim loops over one `AgentClient`; `shutdown` and `abort` stop them."""

    def __init__(self, client: AgentClient, options: AgentOptions) -> None:
        self._client = client
        self._options = options
        self._stop = asyncio.Event()
        self._abort = asyncio.Event()
        self._retry = RetryPolicy(initial=0.5, maximum=10.0)

    @property
    def stopping(self) -> bool:
        """Whether shutdown was asked."""
        return self._stop.is_set()

    def shutdown(self) -> None:
        """Claim nothing more; running jobs get ``shutdown_grace`` seconds to finish."""
        if not self._stop.is_set():
            logger.info("agent_stopping")
        self._stop.set()

    def abort(self) -> None:
        """Claim nothing more and kill running jobs now."""
        self._stop.set()
        self._abort.set()

    async def run_loop(self, agent_id: str, *, once: bool = False) -> int:
        """Claim and run jobs until shut down (or after one job with ``once``); jobs run."""
        finished = 0
        delays = self._retry.delays()
        while not self._stop.is_set():
            asked = time.monotonic()
            try:
                claimed = await self._claim(agent_id)
            except (ServiceUnavailableError, AgentProtocolError) as exc:
                logger.warning("claim_failed", agent_id=agent_id, error=exc.message)
                await self._pause(next(delays))
                continue
            if claimed is None:
                if time.monotonic() - asked < self._options.claim_wait / 2:
                    # "no job" at once, not after a long poll (a claim token whose job is not
                    # waiting any more, a pod that claimed, a server shutting down): back off
                    await self._pause(next(delays))
                continue
            delays = self._retry.delays()
            if not await self._run_safely(claimed, agent_id):
                await self._pause(next(delays))
            finished += 1
            if once:
                break
        return finished

    async def _run_safely(self, claimed: ClaimedJob, agent_id: str) -> bool:
        """Run a job; an agent fault (full disk) is logged and the job left to be re-queued."""
        try:
            await self.run_claimed(claimed, agent_id)
        except Exception:
            logger.exception("job_crashed", job_id=claimed.job_id, agent_id=agent_id)
            return False
        return True

    async def run_claimed(self, claimed: ClaimedJob, agent_id: str) -> Outcome | None:
        """Run one claimed job to its end; the reported outcome, or None when not reported."""
        log = logger.bind(job_id=claimed.job_id, agent_id=agent_id)
        log.info("job_started", attempt=claimed.job.get("attempt"))
        state = JobState()
        interval = self._options.heartbeat_interval or claimed.lease_seconds / 3
        watchers = [
            asyncio.create_task(keep_lease(self._client, claimed, interval, state)),
            asyncio.create_task(self._watch_shutdown(state)),
        ]
        try:
            async with job_workspace(self._options.workspace_root, claimed.job_id) as workspace:
                outcome = await self._run_and_ship(claimed, agent_id, workspace, state)
                if state.lease_lost or state.shut_down:
                    log.warning("job_not_reported", lease_lost=state.lease_lost)
                    return None
                await self._complete(claimed, outcome)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        log.info("job_finished", status=outcome.status, exit_code=outcome.exit_code,
                 reason=outcome.reason)  # fmt: skip
        return outcome

    async def _run_and_ship(
        self, claimed: ClaimedJob, agent_id: str, workspace: Workspace, state: JobState
    ) -> Outcome:
        shipper = LogShipper(self._client, claimed.job_id, claimed.token, offset=claimed.log_offset)
        shipper.start()
        try:
            # the server wrote "[raibid] attempt N started on agent X" when it handed the job out
            spec = JobSpec.from_job(claimed.job)
            outcome = await run_job(
                spec, workspace, shipper.put, state.cancel, self._options.run,
                on_commit=lambda commit: record_commit(self._client, claimed, commit),
            )  # fmt: skip
            if state.shut_down:
                await shipper.put("stderr", "[raibid] the agent shut down; the job will re-run")
        except BaseException:
            await shipper.abandon()
            raise
        # Every line is flushed before `complete`, so the log is whole when the job ends.
        await shipper.close(within=self._options.flush_timeout)
        if shipper.lease_lost:
            state.lease_lost = True
        return outcome

    async def _claim(self, agent_id: str) -> ClaimedJob | None:
        claim = asyncio.create_task(
            self._client.claim(agent_id, self._options.labels, self._options.claim_wait)
        )
        stopped = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({claim, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this task is cancelled: leave no claim running on its own
            stopped.cancel()
            if not claim.done():
                claim.cancel()
                await asyncio.gather(claim, return_exceptions=True)
        return claim.result() if not claim.cancelled() else None

    async def _watch_shutdown(self, state: JobState) -> None:
        await self._stop.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._abort.wait(), self._options.shutdown_grace)
        state.shut_down = True
        state.cancel.set()

    async def _complete(self, claimed: ClaimedJob, outcome: Outcome) -> None:
        try:
            await self._client.complete(
                claimed.job_id, claimed.token, outcome, deadline=self._options.complete_deadline
            )
        except (LeaseLostError, ServiceUnavailableError) as exc:
            logger.warning("complete_refused", job_id=claimed.job_id, error=exc.message)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def default_agent_id() -> str:
    """``<hostname>-<pid>``: unique per agent process on a machine."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def run_agent(
    server_url: str,
    token: str,
    agent_id: str | None = None,
    *,
    once: bool = False,
    concurrency: int = 1,
    workspace_root: Path | None = None,
    labels: Sequence[str] = (),
    job_timeout: float = 3600.0,
    secrets: Mapping[str, str] | None = None,
    claim_wait: float = 30.0,
    heartbeat_interval: float | None = None,
    kill_grace: float = DEFAULT_KILL_GRACE,
    shutdown_grace: float = 20.0,
    handle_signals: bool = False,
    stop: asyncio.Event | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run the reference agent against ``server_url`` until stopped; returns the jobs it ran.

    Args:
        server_url: the raibid-api base URL.
        token: a bearer token with the ``agent`` scope.
        agent_id: the agent's name; default ``<hostname>-<pid>``.
        once: claim one job (waiting as long as it takes), run it, return. Ignores concurrency.
        concurrency: how many jobs run at once (one claim loop each).
        workspace_root: where workspaces go; default ``<temp dir>/raibid-workspaces``.
        labels: sent with every claim.
        job_timeout: seconds a job may run, and a step's timeout when it sets none.
        secrets: secrets steps may ask for by name (``secret_env``); masked in every log line.
        claim_wait: seconds each claim long-polls.
        heartbeat_interval: how long each heartbeat is held open; default a third of the lease
            (a cancel arrives as soon as the server answers the held heartbeat).
        kill_grace: seconds between SIGTERM and SIGKILL of a stopped step.
        shutdown_grace: seconds a running job may go on after a graceful stop.
        handle_signals: stop on SIGTERM/SIGINT (graceful), kill jobs on the second one.
        stop: set it to shut the agent down gracefully.
        transport: an httpx transport (tests).

    Raises:
        AuthenticationError: the server refused the agent token.
        PermissionDeniedError: the token lacks the ``agent`` scope.
    """
    # httpx logs every request at info: an agent's routine calls would be most of its log
    logging.getLogger("httpx").setLevel(logging.WARNING)
    name = agent_id or default_agent_id()
    run = RunSettings(job_timeout, dict(secrets or {}), kill_grace=kill_grace)
    root = workspace_root or Path(tempfile.gettempdir()) / "raibid-workspaces"
    options = AgentOptions(name, root, run, tuple(labels), claim_wait, heartbeat_interval,
                           shutdown_grace)  # fmt: skip
    loops = 1 if once else max(1, concurrency)
    ids = [name] if loops == 1 else [f"{name}-{i + 1}" for i in range(loops)]
    async with AgentClient(server_url, token, transport=transport) as client:
        worker = AgentWorker(client, options)
        with _stopping(worker, stop, handle_signals=handle_signals):
            # A TaskGroup: when one loop fails (a refused token), the others are cancelled.
            async with asyncio.TaskGroup() as group:
                loops_run = [group.create_task(worker.run_loop(i, once=once)) for i in ids]
    return sum(task.result() for task in loops_run)


@contextlib.contextmanager
def _stopping(
    worker: AgentWorker, stop: asyncio.Event | None, *, handle_signals: bool
) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    relay = asyncio.ensure_future(_relay(stop, worker)) if stop is not None else None
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    for signum in signals:
        # A first signal stops gracefully, a second kills the running jobs.
        loop.add_signal_handler(
            signum, lambda: worker.abort() if worker.stopping else worker.shutdown()
        )
    try:
        yield
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        if relay is not None:
            relay.cancel()


async def _relay(stop: asyncio.Event, worker: AgentWorker) -> None:
    await stop.wait()
    worker.shutdown()
