"""Fixtures of the agent end-to-end tests: one server process for them all, agents per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent_harness import Server, start_server, stop_server
from tests.support.git_remote import GitRemote, make_remote


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`raibid-api serve` with ``dispatch.mode: none``, a 3 s lease and a 0.5 s reaper sweep."""
    started = start_server(tmp_path_factory.mktemp("agents-server"))
    yield started
    stop_server(started)


@pytest.fixture(autouse=True)
def own_agents(server: Server) -> Iterator[None]:
    """Stop the agents a test started, and cancel the jobs it left unfinished, when it ends.

    Agents a module started for all its tests were started before this runs, so they stay.
    """
    first = len(server.agents)
    yield
    server.stop_agents(first)
    server.cancel_unfinished()


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    """An empty bare repository and a work tree pushing to it."""
    return make_remote(tmp_path / "forge")


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A folder the tests' build steps write into, to tell the test what they did."""
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder
