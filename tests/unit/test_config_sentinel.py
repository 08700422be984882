"""The Redis Sentinel settings: both keys or neither, never beside a URL, secrets from files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from raibid_api.config import load_settings
from raibid_api.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RAIBID_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "raibid.yaml"
    path.write_text(text)
    return path


def test_sentinel_with_passwords_from_files_waits_for_one_replica(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("data-password-0123\n")
    (tmp_path / "sentinel").write_text("sentinel-password-0123\n")
    config = write(
        tmp_path,
        f"""
redis:
  sentinel:
    master: raibid
    addresses: ["10.0.0.1:26379", "sentinel-b:26380", "[::1]:26381"]
    password_file: {tmp_path / "sentinel"}
  password_file: {tmp_path / "data"}
server: {{environment: production}}
""",
    )

    redis = load_settings(config).redis

    assert redis.external
    assert redis.sentinel.endpoints() == [
        ("10.0.0.1", 26379), ("sentinel-b", 26380), ("::1", 26381),
    ]  # fmt: skip
    assert redis.password is not None
    assert redis.password.get_secret_value() == "data-password-0123"
    assert redis.sentinel.password is not None
    assert redis.sentinel.password.get_secret_value() == "sentinel-password-0123"
    assert redis.replica_acks == 1


def test_without_sentinel_no_replica_is_waited_for_unless_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().redis.replica_acks == 0
    monkeypatch.setenv("RAIBID_REDIS__MIN_REPLICA_ACKS", "2")
    assert load_settings().redis.replica_acks == 2


@pytest.mark.parametrize(
    ("redis", "problem"),
    [
        ("{sentinel: {master: raibid}}", "give both master and addresses"),
        ("{sentinel: {addresses: ['h:1']}}", "give both master and addresses"),
        ("{sentinel: {master: raibid, addresses: ['nohost']}}", "is not host:port"),
        ("{sentinel: {master: raibid, addresses: ['h:70000']}}", "is not host:port"),
        (
            "{url: 'redis://h:6379/0', sentinel: {master: raibid, addresses: ['h:1']}}",
            "give url or sentinel, not both",
        ),
        ("{replica_ack_timeout: 5s}", "must be below 5s"),
    ],
)
def test_inconsistent_redis_settings_are_refused(tmp_path: Path, redis: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, f"redis: {redis}\n"))
    assert problem in str(refused.value) + " ".join(refused.value.problems)
