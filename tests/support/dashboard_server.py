"""The server process the dashboard's browser tests run against: reads closed (so the page must
sign in and use stream tokens), an operator token that may read, write and act as an agent, a
reader token, and Gitea deliveries signed with the test secret.

Stream tokens live 2 s: a browser reconnecting after a cut (3 s later, the stream's `retry`) is
refused its old token and must mint a new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from raibid_api.embedded import free_port
from tests.support.server_process import OPERATOR_TOKEN, READ_TOKEN, Server, launch_server
from tests.support.webhook_samples import SECRET


@contextmanager
def dashboard_server(folder: Path, **logs: Any) -> Iterator[Server]:
    """A running server in ``folder``; ``logs`` settings added to the test's own; killed after."""
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "redis": {"url": None, "data_dir": str(folder / "redis")},
        "auth": {
            "anonymous_read": False,
            "tokens": [
                {"name": "operator", "scopes": ["read", "write", "agent"], "value": OPERATOR_TOKEN},
                {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
            ],
        },
        "webhooks": {"gitea": {"secret": SECRET}, "spool_dir": str(folder / "spool")},
        "dispatch": {"mode": "none"},
        "logs": {"heartbeat": "1s", "stream_token_ttl": "2s"} | logs,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    running = launch_server(folder, path, port)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
