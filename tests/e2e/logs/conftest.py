"""Fixtures of the live-log end-to-end test: `raibid-api serve` with an agent-capable token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_process import OPERATOR_TOKEN, Server, served


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server process with its embedded Redis, no dispatcher, and a read+write+agent token."""
    with served(
        tmp_path,
        auth={
            "tokens": [
                {"name": "operator", "scopes": ["read", "write", "agent"], "value": OPERATOR_TOKEN}
            ]
        },
        logs={"heartbeat": "1s"},
    ) as running:
        yield running
