"""Fixtures of the live-log end-to-end test: `raibid-api serve` with an agent-capable token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from raibid_api.embedded import free_port
from tests.support.server_process import OPERATOR_TOKEN, Server, launch_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server process with its embedded Redis, no dispatcher, and a read+write+agent token."""
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": None, "data_dir": str(tmp_path / "redis")},
        "auth": {
            "tokens": [
                {"name": "operator", "scopes": ["read", "write", "agent"], "value": OPERATOR_TOKEN}
            ]
        },
        "webhooks": {"spool_dir": str(tmp_path / "spool")},
        "dispatch": {"mode": "none"},
        "logs": {"heartbeat": "1s"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    running = launch_server(tmp_path, path, port)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
