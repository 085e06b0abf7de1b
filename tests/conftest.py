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


@pytest.fixture(autouse=True)
def first_frame_at_connect(monkeypatch):
    """``GAN2D_TEST_FIRST_FRAME=1``: every lab's first frame is ready before
    ``Lab.connect`` returns, as on a fast host with a warm compile cache, where a test
    that changes a setting right after connecting meets a frame made with the old one.
    Off by default; a way to find such races on a slow machine (two were found by CI
    on a faster host than this project's)."""
    if os.environ.get("GAN2D_TEST_FIRST_FRAME") != "1":
        return
    from helpers import wait_until

    from gan2d.ui.lab import Lab

    connect = Lab.connect

    def connect_then_wait_for_the_first_frame(self, *args, **kwargs):
        connect(self, *args, **kwargs)
        run = self.runner  # None: a follower, or a full server
        if run is not None:
            wait_until(lambda: run._frame is not None or run.closed or run.error, timeout=120)

    monkeypatch.setattr(Lab, "connect", connect_then_wait_for_the_first_frame)
