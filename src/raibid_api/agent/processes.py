"""Running one command in its own process group: stream its lines, bound it, kill the whole group.

Every command starts a new session, so its pid is the id of a process group holding everything it
spawns. When the command ends, times out or is cancelled, the group is sent SIGTERM (and SIGCONT,
so a stopped process sees it), given a short grace, then SIGKILL: nothing it started outlives it,
except a process that deliberately left the group with ``setsid``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from raibid_api.agent.lines import DEFAULT_MAX_LINE_BYTES, LineAssembler, SecretMasker

Stream = Literal["stdout", "stderr"]
LineSink = Callable[[Stream, str], Awaitable[None]]
StopReason = Literal["timeout", "cancelled"]

DEFAULT_KILL_GRACE = 1.0
_READ_CHUNK = 65_536
_POLL = 0.02
_DRAIN_TIMEOUT = 2.0


@dataclass(frozen=True)
class ProcessResult:
    """How a command ended: its exit code, or why it was stopped (then ``exit_code`` is None).

    A command killed by a signal it was not sent by us reports ``128 + signal``, as shells do.
    """

    exit_code: int | None
    reason: StopReason | None = None


@dataclass(frozen=True)
class OutputOptions:
    """How output becomes log lines: where they go, which secrets to mask, the longest line."""

    sink: LineSink
    masker: SecretMasker
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


async def run_in_group(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    output: OutputOptions,
    time_limit: float,
    cancel: asyncio.Event,
    kill_grace: float = DEFAULT_KILL_GRACE,
) -> ProcessResult:
    """Run ``argv`` in a new process group, streaming each output line to ``output.sink``.

    Lines of one stream reach the sink in the order they were written; lines of stdout and stderr
    interleave in the order they arrive. The command gets ``/dev/null`` as stdin.

    Args:
        argv: the program and its arguments.
        cwd: the working directory.
        env: the complete environment of the command.
        output: where lines go and how they are cleaned.
        time_limit: seconds before the group is killed with reason ``timeout``.
        cancel: set by the caller to kill the group with reason ``cancelled``.
        kill_grace: seconds between SIGTERM and SIGKILL.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    pipes: tuple[tuple[asyncio.StreamReader | None, Stream], ...] = (
        (process.stdout, "stdout"),
        (process.stderr, "stderr"),
    )
    readers = [asyncio.create_task(_pump(pipe, stream, output)) for pipe, stream in pipes if pipe]
    try:
        reason = await _wait_for_exit(process, time_limit, cancel)
    finally:
        # Shielded: a second cancellation must not leave the group running.
        code = await asyncio.shield(_end_group(process, readers, kill_grace))
    if reason is not None:
        return ProcessResult(exit_code=None, reason=reason)
    return ProcessResult(exit_code=code if code >= 0 else 128 - code)


async def _wait_for_exit(
    process: asyncio.subprocess.Process, time_limit: float, cancel: asyncio.Event
) -> StopReason | None:
    exited = asyncio.ensure_future(process.wait())
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        done, _ = await asyncio.wait(
            {exited, cancelled}, timeout=max(time_limit, 0.0), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        exited.cancel()
        cancelled.cancel()
    if exited in done:
        return None
    return "cancelled" if cancelled in done else "timeout"


async def _end_group(
    process: asyncio.subprocess.Process, readers: list[asyncio.Task[None]], grace: float
) -> int:
    await kill_group(process.pid, grace)
    code = await process.wait()
    _, pending = await asyncio.wait(readers, timeout=_DRAIN_TIMEOUT)
    # Only a process that escaped the group with setsid can still hold a pipe open here.
    for reader in pending:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return code


async def _pump(reader: asyncio.StreamReader, stream: Stream, output: OutputOptions) -> None:
    assembler = LineAssembler(output.masker, output.max_line_bytes)
    while chunk := await reader.read(_READ_CHUNK):
        for line in assembler.feed(chunk):
            await output.sink(stream, line)
    for line in assembler.finish():
        await output.sink(stream, line)


async def kill_group(pgid: int, grace: float = DEFAULT_KILL_GRACE) -> None:
    """Stop every process of group ``pgid``: SIGTERM, up to ``grace`` seconds, then SIGKILL."""
    if not group_is_alive(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    _signal_group(pgid, signal.SIGCONT)
    if await _wait_until_gone(pgid, grace):
        return
    _signal_group(pgid, signal.SIGKILL)
    await _wait_until_gone(pgid, grace + 1.0)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _wait_until_gone(pgid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while group_is_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


def group_is_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running (zombies do not count).

    Zombies matter because an orphan is re-parented to PID 1, and a container's PID 1 often never
    reaps: ``killpg(pgid, 0)`` would then report the group alive for ever.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if entry.name.isdigit() and _live_member_of(entry / "stat", pgid):
            return True
    return False


def _live_member_of(stat_path: Path, pgid: int) -> bool:
    try:
        stat = stat_path.read_text()
    except OSError:
        return False
    # The command name may hold spaces and parentheses; the fields after its last ")" do not.
    fields = stat[stat.rfind(")") + 2 :].split()
    return len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X")
