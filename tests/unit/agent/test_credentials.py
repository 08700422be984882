"""The agent's token file is read once and deleted; its process is hidden from same-uid readers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from raibid_api.agent.credentials import take_token_file
from raibid_api.errors import ConfigError
from tests.support.processes import as_unprivileged

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")


def test_token_file_is_read_then_deleted(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("rjc1.secret\n", encoding="utf-8")
    assert take_token_file(path) == "rjc1.secret"
    assert not path.exists()


@LINUX
def test_a_token_file_that_cannot_be_deleted_is_refused() -> None:
    # /proc/version: readable by all, deletable by nobody (not even root)
    with pytest.raises(ConfigError) as raised:
        take_token_file(Path("/proc/version"))
    assert "a build step could read the token" in " ".join(raised.value.problems)
    assert Path("/proc/version").read_text() not in " ".join(raised.value.problems)


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_a_missing_or_empty_token_file_is_refused(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError):
        take_token_file(path)


HIDDEN_CHILD = """
import sys
from raibid_api.agent.credentials import hide_process
print("hidden" if hide_process() else "visible", flush=True)
sys.stdin.readline()
"""
READER = """
import sys
for name in ("environ", "mem", "maps", "cmdline"):
    try:
        with open(f"/proc/{sys.argv[1]}/{name}", "rb") as file:
            file.read(1)
        print(name, "readable")
    except PermissionError:
        print(name, "refused")
"""


@LINUX
def test_a_hidden_process_s_environment_and_memory_are_closed_to_its_own_uid() -> None:
    env = {"PATH": "/usr/bin:/bin", "AGENT_SECRET": "s3cr3t-in-the-initial-env"}
    child = subprocess.Popen(
        as_unprivileged([sys.executable, "-c", HIDDEN_CHILD]),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "hidden"
        reader = subprocess.run(
            as_unprivileged([sys.executable, "-c", READER, str(child.pid)]),
            capture_output=True, text=True, env=env, timeout=30, check=True,
        )  # fmt: skip
    finally:
        child.communicate("\n", timeout=10)
    seen = dict(line.split() for line in reader.stdout.splitlines())
    assert seen == {
        "environ": "refused", "mem": "refused", "maps": "refused", "cmdline": "readable"
    }  # fmt: skip
    assert child.returncode == 0
