"""Child processes of the tests as /proc shows them, and the environment they start with."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

NOBODY = 65534  # the uid (and gid) `as_unprivileged` runs commands as


def as_unprivileged(argv: Sequence[str]) -> list[str]:
    """``argv`` run as an ordinary user: as ``nobody`` through setpriv when the tests run as root.

    A build agent never runs as root; as root, every /proc file and every file is readable and
    a test of what a build step cannot read would prove nothing.
    """
    if os.geteuid() != 0:
        return list(argv)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("setpriv (util-linux) is needed to run a step as an ordinary user")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def clean_env() -> dict[str, str]:
    """This process's environment without any ``RAIBID_*`` setting that could leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RAIBID_")}


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (of every one of its threads)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [child for child in found if is_running(child)]


def command_of(pid: int) -> str:
    """The command line of ``pid``, or '' when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_pid(path: Path) -> int | None:
    """The pid a step wrote to ``path``, once it wrote all of it."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") else None


def kill_group_of(pid: int | None) -> None:
    """SIGKILL the process group a step started as ``pid`` leads, if it still exists."""
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def open_files(pid: int) -> int:
    """How many file descriptors the process ``pid`` holds open."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))
