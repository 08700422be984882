"""Schemathesis against the real server process: generated requests from docs/openapi.json.

`make test` runs a bounded pass (`SCHEMATHESIS_MAX_EXAMPLES` examples per operation, default 25);
`make fuzz` runs the same test longer. Every answer must be no server error and conform to the
document (status code, content type, headers and body as declared; a request outside the schema
refused; auth enforced). Runs with a token of every scope, and without one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raibid_api.embedded import free_port
from tests.support.paths import REPO_ROOT
from tests.support.processes import clean_env
from tests.support.server_process import Server, launch_server, write_config

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
# make test repeats one seed; make fuzz passes an empty one (a new seed each run, printed) or SEED
SEED = os.environ.get("SCHEMATHESIS_SEED", "5150")
EVERY_SCOPE_TOKEN = "schemathesis-every-scope-0123456789"
# every check but one: a request the schema allows may still be refused where validity cannot be
# written in a schema (a /jobs cursor is signed; clone URL schemes are configured)
EXCLUDED_CHECKS = "positive_data_acceptance"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    config = write_config(folder, folder / "redis", host="127.0.0.1", port=port)
    text = config.read_text().replace(
        "tokens:\n",
        "tokens:\n  - name: fuzzer\n    scopes: [read, write, agent]\n"
        f"    value: {EVERY_SCOPE_TOKEN}\n",
        1,
    )
    config.write_text(text)
    started = launch_server(folder, config, port)
    yield started
    started.terminate()


def schemathesis(server: Server, report: Path, *headers: str) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` on the server's OpenAPI document."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"{server.base_url}/openapi.json", "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
        "--max-examples", MAX_EXAMPLES, *(["--seed", SEED] if SEED else []),
        "--phases", "examples,coverage,fuzzing", "--workers", "1",
        "--request-timeout", "10", "--report", "junit", "--report-dir", str(report),
        "--warnings", "off", *headers,
    ]  # fmt: skip
    env = clean_env() | {
        "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
        "PYTHONPATH": str(REPO_ROOT),
        "SCHEMATHESIS_TELEMETRY": "false",
        "NO_COLOR": "1",
    }
    # run in the report folder: schemathesis keeps a cache in its working directory
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=report, timeout=900, check=False
    )


@pytest.mark.parametrize("authorized", [True, False], ids=["with-token", "without-token"])
def test_generated_requests_get_declared_answers_and_no_server_error(
    server: Server, tmp_path: Path, authorized: bool
) -> None:
    headers = ["-H", f"Authorization: Bearer {EVERY_SCOPE_TOKEN}"] if authorized else []
    result = schemathesis(server, tmp_path, *headers)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Traceback" not in server.output()
