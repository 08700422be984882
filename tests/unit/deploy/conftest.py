"""Fixtures of the deploy tests: the cluster's config.yaml made loadable outside the cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.support.manifests import MaterializedConfig, config_map_source, secret_file_paths


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No RAIBID_* variable of the machine running the tests leaks into the loaded settings."""
    for name in list(os.environ):
        if name.startswith("RAIBID_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def materialized_config(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> MaterializedConfig:
    """config.yaml with each in-cluster secret path rewritten to a local file.

    Only the paths change: every other byte of the ConfigMap's file is what the pods read.
    """
    text = config_map_source().read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    secrets: dict[str, str] = {}
    # Longest first, so that no path is rewritten inside a longer one.
    paths = sorted(secret_file_paths(document), key=len, reverse=True)
    for number, cluster_path in enumerate(paths):
        name = Path(cluster_path).name
        value = (
            f"redis://:pw{number}@raibid-redis.ci.svc:6379/0"
            if name == "redis-url"
            else f"{name}-value-{number}-0123456789abcdef"
        )
        local = tmp_path / "secrets" / name
        local.parent.mkdir(exist_ok=True)
        # A trailing newline, as `kubectl create secret --from-file` keeps it.
        local.write_text(value + "\n", encoding="utf-8")
        secrets[cluster_path] = value
        text = text.replace(cluster_path, str(local))
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return MaterializedConfig(path=path, document=document, secrets=secrets)
