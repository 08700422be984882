"""Fixtures of the webhook unit tests: the recorded payloads are in ``tests/fixtures/webhooks``."""

from __future__ import annotations

from pathlib import Path

import pytest

from raibid_api.config import WebhookSettings
from tests.support.paths import WEBHOOK_FIXTURES
from tests.support.webhook_samples import make_settings


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The webhook fixtures directory of the repository."""
    return WEBHOOK_FIXTURES


@pytest.fixture
def signed_settings() -> WebhookSettings:
    """Settings where every forge signs with `webhook_samples.SECRET`; no filters."""
    return make_settings()
