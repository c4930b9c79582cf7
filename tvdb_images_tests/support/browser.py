"""Debian's Chromium, headless, through Playwright: the one browser the browser tests drive, and the
loopback origin of the web application page their scripts run in.

The system binary rather than `playwright install`'s download, so the tests need no network and run
the browser the machine updates; a missing binary fails the test with the package to install.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@contextmanager
def serve_page(body: bytes) -> Iterator[str]:
    """An origin (`http://127.0.0.1:<port>`) answering every GET with the HTML page `body`."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
