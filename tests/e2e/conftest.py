"""Fixtures of the end-to-end tests: `python -m raibid_api serve` as a real process, spoken to over
real HTTP, with its own embedded Redis in a temporary folder (`tests.support.server_process`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from raibid_api.embedded import free_port
from tests.support.server_process import (
    Server,
    ServerFactory,
    launch_server,
    raibid_api,
    write_config,
)


@pytest.fixture(scope="session")
def openapi_spec() -> dict[str, object]:
    """The OpenAPI document `raibid-api openapi` prints."""
    result = raibid_api("openapi")
    assert result.returncode == 0, result.stderr
    spec: dict[str, object] = json.loads(result.stdout)
    return spec


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers that keep their Redis data in a given folder; all are stopped at the end."""
    started: list[Server] = []

    def start(data_dir: Path) -> Server:
        port = free_port()
        server = launch_server(
            tmp_path,
            write_config(
                tmp_path,
                data_dir,
                host="127.0.0.1",
                port=port,
                public_url=f"http://127.0.0.1:{port}",
            ),
            port,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
