"""Fixtures of the dashboard's browser tests: a server process with reads closed (so the page must
sign in and use stream tokens), a proxy the test can sever between it and the browser, and
Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser

from raibid_api.embedded import free_port
from tests.support.browser import chromium
from tests.support.server_process import OPERATOR_TOKEN, READ_TOKEN, Server, launch_server
from tests.support.tcp_proxy import SeverableProxy, severable_proxy
from tests.support.webhook_samples import SECRET


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium for the module's tests."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server process without anonymous reads, with an operator and a reader token.

    Stream tokens live 2 s: a browser reconnecting after a cut (3 s later, the stream's `retry`)
    is refused its old token and must mint a new one.
    """
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
        "webhooks": {"gitea": {"secret": SECRET}, "spool_dir": str(tmp_path / "spool")},
        "dispatch": {"mode": "none"},
        "logs": {"heartbeat": "1s", "stream_token_ttl": "2s"},
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


@pytest.fixture
def proxy(server: Server) -> Iterator[SeverableProxy]:
    """A proxy to ``server`` that the browser talks through."""
    port = int(server.base_url.rpartition(":")[2])
    with severable_proxy(("127.0.0.1", port)) as running:
        yield running
