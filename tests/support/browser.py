"""A real browser for the dashboard tests: Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work here, so the system's `chromium` package is used
(`.ci/run` installs it). Under CI (`CI=true`) a missing browser fails the test: it must never be
skipped there. Elsewhere it is skipped, saying how to install it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> Path:
    """The Chromium binary; fails under CI and skips elsewhere when it is not installed."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"no browser at {CHROMIUM}: `apt-get install chromium` (.ci/run installs it in CI)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed afterwards."""
    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True)
        try:
            yield browser
        finally:
            browser.close()
