"""Fixtures of the agent's integration tests: git remotes, the protocol double, workspaces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.git_remote import GitRemote, make_remote
from tests.support.protocol_double import ProtocolDouble, running_double


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    return make_remote(tmp_path / "forge")


@pytest.fixture
async def double() -> AsyncIterator[ProtocolDouble]:
    async with running_double() as started:
        yield started
