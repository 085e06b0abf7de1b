"""Shared fixtures: the app's modules on sys.path, and a real `panel serve app` plus
headless Chromium for the browser tests (marked ``browser``)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "app"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# `panel serve app` puts app/ on sys.path while it runs main.py; the tests do the same
# so they can import the lab's modules (lab_state, lab_runner, ...).
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    # GET / (no redirect following): a request for /app itself would open a session
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/")
        conn.getresponse().read()
        conn.close()
        return True
    except OSError:
        return False


class AppServer:
    """A `python -m panel serve app` subprocess on a free localhost port."""

    def __init__(self, env: dict | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/app"
        # closed in stop(); the server writes to it for the whole module
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w+", prefix="gan2d-serve-", suffix=".log"
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "panel",
                "serve",
                "app",
                "--port",
                str(self.port),
                "--address",
                "127.0.0.1",
                "--allow-websocket-origin",
                f"127.0.0.1:{self.port}",
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"panel serve exited early:\n{self.output()}")
            if _answers(self.port):
                return
            time.sleep(0.3)
        raise RuntimeError(f"panel serve did not answer within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self._log.flush()
        with open(self._log.name) as f:
            return f.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture(scope="module")
def app_server():
    server = AppServer()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing: the browser tests need Debian's chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageErrors(list):
    """Console errors and uncaught page errors seen by one page."""


@pytest.fixture
def lab_page(chromium, app_server):
    """A fresh page (own context) that records console errors and page errors; the
    test opens the URL it needs with ``open_lab``."""
    context = chromium.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    errors = PageErrors()
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.errors = errors
    try:
        yield page
    finally:
        context.close()
