"""Debian's Chromium, headless, through Playwright: the one browser the browser tests drive.

The system binary rather than `playwright install`'s download, so the tests need no network and run
the browser the machine updates; a missing binary fails the test with the package to install.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
HEADLESS = ("--headless", "--no-sandbox", "--disable-gpu")


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """A launched Playwright `Browser`, closed on exit; `extra_args` go after the headless ones."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*HEADLESS, *extra_args])
        yield browser
        browser.close()
