"""The browser tests use the sign-off fixtures: the seeded environments and policies (put
back after a transactional test's flush), alice's high-risk model and its version, and CI;
and, here, Debian's Chromium driven by Playwright, and where screenshots go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.approvals.conftest import ci, model, seeded_defaults, version  # noqa: F401
from tests.support import need

# Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls while
# one runs. The tests' database work happens in fixtures set up before the browser starts
# (a greenlet has its own context, so an ORM call inside it would open a second connection
# that is never closed); this only guards against a stray one.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Screenshots go to $TEST_OUTPUT/screenshots (the CI artefacts), else a temporary dir."""
    base = os.environ.get("TEST_OUTPUT")
    folder = Path(base) / "screenshots" if base else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright."""
    need(CHROMIUM.exists(), "Chromium", "install Debian's chromium package (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any) -> Any:
    """A page in a new context of its own (cookies apart), 1280 px wide."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    return context.new_page()
