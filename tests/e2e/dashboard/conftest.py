"""Fixtures of the dashboard's browser tests: a server process (`tests.support.dashboard_server`),
a proxy the test can sever between it and the browser, and Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.support.browser import chromium
from tests.support.dashboard_server import dashboard_server
from tests.support.server_process import Server
from tests.support.severable_proxy import SeverableProxy, severable_proxy


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium for the module's tests."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server process without anonymous reads, with an operator and a reader token."""
    with dashboard_server(tmp_path) as running:
        yield running


@pytest.fixture
def proxy(server: Server) -> Iterator[SeverableProxy]:
    """A proxy to ``server`` that the browser talks through."""
    port = int(server.base_url.rpartition(":")[2])
    with severable_proxy(("127.0.0.1", port)) as running:
        yield running
