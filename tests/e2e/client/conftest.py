"""Fixtures of the terminal client's end-to-end tests: `raibid-api serve` with closed reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from raibid_api.embedded import free_port
from tests.support.server_process import OPERATOR_TOKEN, READ_TOKEN, Server, launch_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server process with its embedded Redis, no dispatcher, reads closed to anonymous
    callers, a read+write+agent token and a read-only one."""
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": None, "data_dir": str(tmp_path / "redis")},
        "auth": {
            "anonymous_read": False,
            "tokens": [
                {"name": "operator", "scopes": ["read", "write", "agent"], "value": OPERATOR_TOKEN},
                {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
            ],
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
