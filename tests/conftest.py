"""Shared fixtures: a real `panel serve app` plus headless Chromium for the browser tests
(marked ``browser``), and a private scheduler for tests that train through the app."""

from __future__ import annotations

import os

import pytest

from gan2d.ui.browser import AppServer, chromium_missing, launch_chromium
from gan2d.ui.scheduler import Scheduler


@pytest.fixture
def pool():
    """A scheduler of two workers for one test (the app's own is process-wide)."""
    scheduler = Scheduler(workers=2)
    try:
        yield scheduler
    finally:
        scheduler.shutdown()


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
    missing = chromium_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
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
