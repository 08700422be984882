"""What every benchmark shares: percentiles, the machine summary, child processes, tables."""

from __future__ import annotations

import math
import os
import platform
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by the nearest-rank method."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def machine_summary() -> dict[str, str]:
    """The facts a figure needs beside it: cores, memory, CPU model, load, Python."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "unknown"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": memory,
        "load average (1/5/15 min)": load,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def wait_for_http(
    url: str, timeout: float, headers: Mapping[str, str] | None = None, interval: float = 0.02
) -> float:
    """Poll ``url`` until it answers 200; return the seconds waited.

    Raises:
        TimeoutError: no 200 within ``timeout`` seconds.
    """
    started = time.perf_counter()
    deadline = started + timeout
    with httpx.Client(timeout=1.0, headers=dict(headers or {})) as client:
        while time.perf_counter() < deadline:
            try:
                if client.get(url).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(interval)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


@dataclass
class ChildProcess:
    """A process this benchmark started, with its output in a log file; stopped by its own id."""

    command: list[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path = REPO_ROOT
    new_session: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> ChildProcess:
        """Start the command, its stdout and stderr going to ``log_path``."""
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=dict(self.env) if self.env is not None else None,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=self.new_session,
        )
        return self

    @property
    def pid(self) -> int:
        """The process id.

        Raises:
            RuntimeError: the process was not started (or was stopped).
        """
        if self.process is None:
            raise RuntimeError(f"not running: {self.command[0]}")
        return self.process.pid

    def stop(self, timeout: float = 15.0) -> None:
        """SIGINT (a graceful stop), SIGKILL after ``timeout``; the whole group when it has one."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        if self.new_session:
            # the group may outlive its leader (make's child); it is ours, end what is left
            self._signal(signal.SIGKILL)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        try:
            if self.new_session:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)
        except ProcessLookupError:
            pass

    def output_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines the process wrote."""
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable as plain text)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in cells]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
