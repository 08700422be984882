"""Fixtures of the terminal client's end-to-end tests: `raibid-api serve` with closed reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_process import OPERATOR_TOKEN, READ_TOKEN, Server, served


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server process with its embedded Redis, no dispatcher, reads closed to anonymous
    callers, a read+write+agent token and a read-only one."""
    with served(
        tmp_path,
        auth={
            "anonymous_read": False,
            "tokens": [
                {"name": "operator", "scopes": ["read", "write", "agent"], "value": OPERATOR_TOKEN},
                {"name": "reader", "scopes": ["read"], "value": READ_TOKEN},
            ],
        },
        logs={"heartbeat": "1s"},
    ) as running:
        yield running
