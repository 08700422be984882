"""The `raibid-api` command besides serve: `config check` and `openapi`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import REPO_ROOT
from tests.support.processes import clean_env
from tests.support.server_process import raibid_api

pytestmark = pytest.mark.e2e

DEVELOPMENT = REPO_ROOT / "examples" / "development.yaml"
COMMITTED_OPENAPI = REPO_ROOT / "docs" / "openapi.json"


def test_config_check_accepts_the_development_example() -> None:
    result = raibid_api("config", "check", "--config", str(DEVELOPMENT))
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["server"]["port"] == 8080
    assert shown["redis"]["url"] is None
    assert shown["auth"]["tokens"][0]["name"] == "dev-admin"


def test_config_check_masks_every_secret(tmp_path: Path) -> None:
    secret_file = tmp_path / "github-secret"
    secret_file.write_text("from-a-mounted-file-5150\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "auth": {"tokens": [{"name": "ci", "scopes": ["read"], "value": "inline-4242"}]},
                "webhooks": {
                    "gitea": {"secret": "inline-webhook-secret-1"},
                    "github": {"secret_file": str(secret_file)},
                },
            }
        )
    )
    env = clean_env() | {
        "RAIBID_REDIS__URL": "redis://:env-password-777@redis.example.test:6379/0",
        "RAIBID_FORGES__GITEA__TOKEN": "env-forge-token-31337",
    }
    result = raibid_api("config", "check", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    everything = result.stdout + result.stderr
    for secret in (
        "inline-4242",
        "inline-webhook-secret-1",
        "from-a-mounted-file-5150",
        "env-password-777",
        "env-forge-token-31337",
    ):
        assert secret not in everything
    shown = yaml.safe_load(result.stdout)
    assert shown["auth"]["tokens"][0]["value"] == "***"
    assert shown["webhooks"]["gitea"]["secret"] == "***"
    assert shown["webhooks"]["github"]["secret"] == "***"
    assert shown["forges"]["gitea"]["token"] == "***"
    assert shown["redis"]["url"] == "***"


def test_config_check_of_the_development_example_masks_its_secrets() -> None:
    result = raibid_api("config", "check", "--config", str(DEVELOPMENT))
    assert result.returncode == 0
    assert "dev-only-token" not in result.stdout
    assert "dev-webhook-secret" not in result.stdout
    assert yaml.safe_load(result.stdout)["auth"]["tokens"][0]["value"] == "***"


@pytest.mark.parametrize(
    ("config", "key_path"),
    [
        ({"server": {"hots": "127.0.0.1"}}, "server.hots"),
        ({"servers": {"port": 1}}, "servers"),
        ({"auth": {"tokens": [{"name": "a", "scopes": ["read"], "value": "v-1234",
                               "scope": "x"}]}}, "auth.tokens.0.scope"),
    ],
    ids=["in-a-section", "a-section", "in-a-list"],
)  # fmt: skip
def test_config_check_names_an_unknown_key_and_exits_2(
    tmp_path: Path, config: dict[str, object], key_path: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = raibid_api("config", "check", "--config", str(path))
    assert result.returncode == 2
    assert f"{key_path}: unknown key" in result.stderr
    assert result.stdout == ""


def test_config_check_names_an_invalid_value_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"jobs": {"lease": "soon"}, "server": {"port": 0}}))
    result = raibid_api("config", "check", "--config", str(path))
    assert result.returncode == 2
    assert "jobs.lease:" in result.stderr
    assert "server.port:" in result.stderr


def test_openapi_command_prints_the_committed_spec(openapi_spec: dict[str, object]) -> None:
    assert COMMITTED_OPENAPI.is_file(), (
        "docs/openapi.json is missing; write it with `raibid-api openapi > docs/openapi.json`"
    )
    committed = COMMITTED_OPENAPI.read_text()
    assert raibid_api("openapi").stdout == committed, (
        "docs/openapi.json differs from what the code generates; "
        "regenerate it with `raibid-api openapi > docs/openapi.json`"
    )


def test_openapi_documents_every_jobs_route(openapi_spec: dict[str, object]) -> None:
    paths = openapi_spec["paths"]
    assert isinstance(paths, dict)
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/jobs/{job_id}/retry"} <= set(
        paths
    )
    assert {"/health", "/ready"} <= set(paths)
    # the /api copies serve the original CLI; they are not a second contract
    assert not [path for path in paths if path.startswith("/api/")]


# the operations anyone may call: liveness, readiness, and the webhook intake (HMAC-signed)
PUBLIC_OPERATIONS = {("get", "/health"), ("get", "/ready"), ("post", "/webhook/{forge}")}
JOB_TOKEN_PREFIX = "/agent/jobs/"


def test_openapi_declares_bearer_auth_on_every_protected_operation(
    openapi_spec: dict[str, Any],
) -> None:
    schemes = openapi_spec["components"]["securitySchemes"]
    assert schemes["apiToken"]["scheme"] == schemes["jobToken"]["scheme"] == "bearer"
    for path, operations in openapi_spec["paths"].items():
        for method, operation in operations.items():
            declared = operation.get("security")
            if (method, path) in PUBLIC_OPERATIONS:
                assert declared is None, f"{method} {path} is public"
            elif path.startswith(JOB_TOKEN_PREFIX):
                assert declared == [{"jobToken": []}], f"{method} {path}"
            else:
                assert declared == [{"apiToken": []}], f"{method} {path}"
