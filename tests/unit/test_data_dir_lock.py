"""`DataDirLock`: one owner per embedded Redis data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from raibid_api.embedded import LOCK_FILE, DataDirLock
from raibid_api.errors import ConfigError


def test_the_owner_writes_its_pid_and_creates_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "not" / "yet" / "there"
    with DataDirLock(folder):
        assert (folder / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_a_second_claim_is_refused_naming_the_owner_and_changing_nothing(tmp_path: Path) -> None:
    (tmp_path / "appendonly.aof").write_bytes(b"data")
    with DataDirLock(tmp_path):
        before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
        with pytest.raises(ConfigError) as caught:
            DataDirLock(tmp_path).acquire()
        after = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert caught.value.message == (
        f"the embedded Redis data folder {tmp_path} is in use by another raibid-api "
        f"(pid {os.getpid()})"
    )
    assert after == before


def test_released_the_folder_can_be_claimed_again(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path).acquire()
    first.release()
    with DataDirLock(tmp_path), pytest.raises(ConfigError):
        DataDirLock(tmp_path).acquire()
