"""The server process the dashboard's browser tests run against: reads closed (so the page must
sign in and use stream tokens), an operator token that may read, write and act as an agent, a
reader token, and Gitea deliveries signed with the test secret.

Stream tokens live 2 s: a browser reconnecting after a cut (3 s later, the stream's `retry`) is
refused its old token and must mint a new one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from tests.support.server_process import OPERATOR_TOKEN, READ_TOKEN, Server, served
from tests.support.webhook_samples import SECRET


def dashboard_server(folder: Path, **logs: Any) -> AbstractContextManager[Server]:
    """A running server in ``folder``; ``logs`` settings added to the test's own; killed after."""
    return served(
        folder,
        auth={
            "anonymous_read": False,
            "tokens": [
                {"name": "operator", "scopes": ["read", "write", "agent"], "value": OPERATOR_TOKEN},
                {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
            ],
        },
        webhooks={"gitea": {"secret": SECRET}},
        logs={"heartbeat": "1s", "stream_token_ttl": "2s"} | logs,
    )
