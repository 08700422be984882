"""Where the tests find the repository's own files; nothing outside the repository is read."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
WEBHOOK_FIXTURES = FIXTURES / "webhooks"
