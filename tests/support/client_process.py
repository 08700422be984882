"""The terminal client (`raibid-api jobs ...`, `raibid-api logs ...`) as a real process, and an
agent speaking the protocol over real HTTP to give its jobs log lines and an outcome."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import clean_env

SCRIPT = Path(sys.executable).with_name("raibid-api")
TRIGGER = ["--repo", "acme/widgets", "--clone-url", "https://git.example.test/acme/widgets.git",
           "--branch", "main"]  # fmt: skip


def client_env(url: str, token: str | None) -> dict[str, str]:
    """The environment of a client of the server at ``url``, with ``token`` when given."""
    env = clean_env() | {"RAIBID_API_URL": url, "COLUMNS": "200"}
    env.pop("NO_COLOR", None)  # the terminal tests look for colours
    return env | ({"RAIBID_TOKEN": token} if token else {})


def run_client(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `raibid-api <args>` to its end, its output captured (not a terminal)."""
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def run_on_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run `raibid-api <args>` with its stdout on a pseudo-terminal; its status and output."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [str(SCRIPT), *args], stdout=follower, stderr=subprocess.PIPE, env=env | {"TERM": "xterm"}
    ) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = process.wait(timeout=60)
    os.close(leader)
    return status, b"".join(chunks).decode(errors="replace")


@dataclass
class Following:
    """A `raibid-api logs -f` (or `--follow`) process, its output going to files."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def lines(self) -> list[str]:
        """What it printed on stdout so far, line by line."""
        return self.stdout.read_text(errors="replace").splitlines()

    def errors(self) -> str:
        """What it printed on stderr so far."""
        return self.stderr.read_text(errors="replace")

    def wait(self, timeout: float = 30.0) -> int:
        """Its exit status."""
        return self.process.wait(timeout=timeout)


def start_client(folder: Path, *args: str, env: dict[str, str]) -> Following:
    """Start `raibid-api <args>` in the background, stdout and stderr into ``folder``."""
    count = len(list(folder.glob("client-*.out")))
    stdout, stderr = folder / f"client-{count}.out", folder / f"client-{count}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen([str(SCRIPT), *args], stdout=out, stderr=err, env=env)
    return Following(process, stdout, stderr)
