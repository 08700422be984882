"""Debian's `prometheus` and `promtool`, unpacked by `make` into .tools/prometheus (see Makefile).

Outside CI a missing tool skips the test that needs it (run `make test`, or
`.ci/fetch-prometheus .tools/prometheus`); under ``CI=true`` it fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

TOOLS = REPO_ROOT / ".tools" / "prometheus" / "usr" / "bin"


def tool(name: str) -> Path:
    """The path of ``prometheus`` or ``promtool``: the repository's copy, else one on PATH."""
    local = TOOLS / name
    if local.is_file():
        return local
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    why = f"{name} not found: run `make .tools/prometheus/.fetched` (Debian's prometheus package)"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``promtool args``; the caller checks its exit code and output."""
    return subprocess.run(
        [str(tool("promtool")), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
