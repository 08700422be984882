"""Fixtures of the webhook unit tests.

The recorded payloads are located by `webhook_samples.find_fixtures_dir`: the repository is the
directory above these tests that holds ``pyproject.toml``, and the payloads are in
``<repo>/../shared/fixtures/webhooks`` (the same layout locally and in CI).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raibid_api.config import WebhookSettings

from .webhook_samples import find_fixtures_dir, make_settings


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared webhook fixtures directory."""
    return find_fixtures_dir()


@pytest.fixture
def signed_settings() -> WebhookSettings:
    """Settings where every forge signs with `webhook_samples.SECRET`; no filters."""
    return make_settings()
