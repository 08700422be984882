from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from raibid_api.config import format_duration, load_settings, parse_duration, secret_values
from raibid_api.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "raibid.yaml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("RAIBID_"):
            monkeypatch.delenv(name)


def test_defaults_match_the_design() -> None:
    settings = load_settings()
    assert settings.server.port == 8080
    assert settings.redis.url is None
    assert settings.redis.key_prefix == "raibid"
    assert settings.jobs.retention == timedelta(hours=24)
    assert settings.jobs.max_attempts == 3
    assert settings.logs.heartbeat == timedelta(seconds=15)
    assert settings.dispatch.mode == "local"
    assert settings.webhooks.allow_unsigned is False


def test_yaml_overrides_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "jobs: {retention: 2h}\nserver: {port: 9000}\n"))
    assert settings.jobs.retention == timedelta(hours=2)
    assert settings.server.port == 9000
    assert settings.server.host == "127.0.0.1"


def test_env_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAIBID_SERVER__PORT", "9100")
    settings = load_settings(write(tmp_path, "server: {port: 9000, host: 0.0.0.0}\n"))
    assert settings.server.port == 9100
    assert settings.server.host == "0.0.0.0"  # noqa: S104


def test_keyword_arguments_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAIBID_REDIS__KEY_PREFIX", "fromenv")
    settings = load_settings(redis={"key_prefix": "fromargs"})
    assert settings.redis.key_prefix == "fromargs"


def test_config_path_comes_from_raibid_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAIBID_CONFIG", str(write(tmp_path, "server: {port: 9200}\n")))
    assert load_settings().server.port == 9200


def test_unknown_yaml_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "jobs: {retension: 2h}\n"))
    assert caught.value.problems == ["jobs.retension: unknown key"]


def test_unknown_top_level_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "jobz: {}\n"))
    assert caught.value.problems == ["jobz: unknown key"]


def test_unknown_env_section_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAIBID_JOBZ__RETENTION", "1h")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems[0].startswith("RAIBID_JOBZ__RETENTION: unknown section 'jobz'")


def test_env_names_without_a_section_separator_are_not_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAIBID_API_PORT", "tcp://10.0.0.1:8080")  # a Kubernetes service link
    assert load_settings().server.port == 8080


def test_unknown_env_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAIBID_JOBS__RETENTON", "1h")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == ["jobs.retenton: unknown key"]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("server: {port: 70000}\n", "server.port"),
        ("jobs: {retention: forever}\n", "jobs.retention"),
        ("jobs: {lease: 0s}\n", "jobs.lease"),
        ("dispatch: {mode: swarm}\n", "dispatch.mode"),
        ("server: {public_url: ci.example.org}\n", "server.public_url"),
        ("auth: {tokens: [{name: a, scopes: [read]}]}\n", "auth.tokens.0"),
        (
            "auth: {tokens: [{name: a, scopes: [root], value: abcdefgh}]}\n",
            "auth.tokens.0.scopes.0",
        ),
        ("webhooks: {gitea: {secret: changeme}}\n", "webhooks.gitea.secret"),
        ("redis: {key_prefix: 'a b'}\n", "redis.key_prefix"),
        ("server: {host: ''}\n", "server.host"),
        ("server: {public_url: 'ftp://ci.example.org'}\n", "server.public_url"),
    ],
)
def test_invalid_value_names_key_path_and_reason(tmp_path: Path, text: str, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith(f"{path}: ")
    assert len(problem) > len(path) + 5


def test_invalid_value_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            write(tmp_path, "auth: {tokens: [{name: a, scopes: [x], value: s3cr3t-v4lue}]}\n")
        )
    assert "s3cr3t-v4lue" not in " ".join(caught.value.problems)


def test_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "server: {port: [\n"))


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(write(tmp_path, "- a\n- b\n"))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")


def test_secret_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("file-held-secret\n")
    settings = load_settings(
        write(tmp_path, f"webhooks: {{gitea: {{secret_file: {tmp_path / 'secret'}}}}}\n")
    )
    assert settings.webhooks.gitea.secret is not None
    assert settings.webhooks.gitea.secret.get_secret_value() == "file-held-secret"


def test_secret_can_come_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAIBID_WEBHOOKS__GITHUB__SECRET", "env-held-secret")
    settings = load_settings()
    assert settings.webhooks.github.secret is not None
    assert settings.webhooks.github.secret.get_secret_value() == "env-held-secret"
    assert "env-held-secret" in secret_values(settings)


def test_production_refuses_the_embedded_redis(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "server: {environment: production}\n"))
    assert "redis.url" in caught.value.problems[0]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("24h", 86400), ("1h30m", 5400), ("250ms", 0.25), ("7d", 604800),
     ("42", 42), (3, 3)],
)  # fmt: skip
def test_durations_parse(text: str | int, seconds: float) -> None:
    parsed = parse_duration(text)
    assert isinstance(parsed, timedelta)
    assert parsed.total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "1h-5m", "abc", "1.5.5s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "90s"), (300, "5m"), (86400, "1d"), (0.5, "0.5s")]
)
def test_durations_render_as_configured(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_a_mapping_replaces_its_default_instead_of_merging(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, "dispatch: {kubernetes: {node_selector: {pool: ci}}}\n")
    )
    assert settings.dispatch.kubernetes.node_selector == {"pool": "ci"}


def test_env_for_one_nested_key_keeps_the_section_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAIBID_FORGES__GITHUB__CONTEXT", "ci/raibid")
    settings = load_settings()
    assert settings.forges.github.context == "ci/raibid"
    assert settings.forges.github.url == "https://api.github.com"


def test_public_url_is_unset_by_default_and_links_follow_host_and_port(tmp_path: Path) -> None:
    assert load_settings().server.public_url is None
    assert load_settings().server.base_url == "http://127.0.0.1:8080"
    server = load_settings(write(tmp_path, "server: {host: localhost, port: 9090}\n")).server
    assert server.public_url is None
    assert server.base_url == "http://localhost:9090"


def test_public_url_null_in_yaml_is_the_default(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "server: {public_url: null, port: 9000}\n"))
    assert settings.server.public_url is None
    assert settings.server.base_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:9090"),  # noqa: S104
        ("::", "http://[::1]:9090"),
        ("::1", "http://[::1]:9090"),
        ("10.1.2.3", "http://10.1.2.3:9090"),
        ("fd00::7", "http://[fd00::7]:9090"),
    ],
)
def test_a_wildcard_host_is_named_by_its_loopback(host: str, url: str) -> None:
    server = load_settings(server={"host": host, "port": 9090}).server
    assert server.local_url == url
    assert server.base_url == url


def test_a_set_public_url_names_the_links_whatever_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAIBID_SERVER__PUBLIC_URL", "https://ci.example.org/")
    server = load_settings(server={"host": "0.0.0.0", "port": 9090}).server  # noqa: S104
    assert server.public_url == "https://ci.example.org"
    assert server.base_url == "https://ci.example.org"
    assert server.local_url == "http://127.0.0.1:9090"
