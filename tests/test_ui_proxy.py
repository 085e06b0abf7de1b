"""Past one process: the README's recipe, ``deploy/nginx.conf``, in front of two
``panel serve`` processes. Every request of a browser reaches one process (a Bokeh
session lives in one), and a follow link reaches the process that runs the shared run,
wherever the student's browser was sent before."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from test_ui_browser import FRAME_MS, open_lab

from gan2d.ui.browser import ROOT, AppServer, answers, free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def nginx_binary():
    found = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        reason = "nginx is missing: the proxy recipe's test needs Debian's nginx"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def class_behind_nginx(nginx_binary):
    """Two app processes (routes A and B) behind nginx; yields (proxy URL, servers)."""
    port = free_port()
    origin = ["--allow-websocket-origin", f"127.0.0.1:{port}"]
    servers = {r: AppServer(env={"GAN2D_ROUTE": r}, args=origin) for r in "AB"}
    prefix = Path(tempfile.mkdtemp(prefix="gan2d-nginx-"))
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("127.0.0.1:5006", f"127.0.0.1:{servers['A'].port}")
    conf = conf.replace("127.0.0.1:5007", f"127.0.0.1:{servers['B'].port}")
    (prefix / "nginx.conf").write_text(conf)
    proxy = subprocess.Popen(
        [nginx_binary, "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for server in servers.values():
            server.wait_ready()
        deadline = time.monotonic() + 30
        while not answers("127.0.0.1", port):
            assert proxy.poll() is None, proxy.stdout.read().decode()
            assert time.monotonic() < deadline, "nginx did not answer"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/app", servers
    finally:
        proxy.terminate()
        proxy.wait(10)
        for server in servers.values():
            server.stop()
        shutil.rmtree(prefix, ignore_errors=True)


def _route(context) -> str:
    (cookie,) = [c["value"] for c in context.cookies() if c["name"] == "gan2d_route"]
    return cookie


def test_two_processes_behind_nginx_each_browser_stays_on_one(chromium, class_behind_nginx):
    url, servers = class_behind_nginx
    teacher_ctx = chromium.new_context(viewport={"width": 1600, "height": 1000})
    student_ctx = chromium.new_context(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    try:
        teacher = teacher_ctx.new_page()
        teacher.on("pageerror", lambda e: errors.append(str(e)))
        # a new browser is sent to one process, and its websocket follows (frames arrive)
        open_lab(teacher, url)
        route = _route(teacher_ctx)
        assert route in ("a", "b")
        teacher.get_by_role("button", name="Share live").click()
        line = teacher.get_by_text(re.compile(r"Live: code [A-Z0-9]{6}"))
        line.wait_for(timeout=FRAME_MS)
        code = re.search(r"code ([A-Z0-9]{6})", line.inner_text()).group(1)
        assert code[0] == route.upper()  # the code names the process that runs it
        teacher.get_by_role("button", name="Play").click()

        # a student whose browser was sent to the other process gets a lab there...
        other = "b" if route == "a" else "a"
        student_ctx.add_cookies(
            [{"name": "gan2d_route", "value": other, "url": url.rsplit("/", 1)[0]}]
        )
        student = student_ctx.new_page()
        student.on("pageerror", lambda e: errors.append(str(e)))
        open_lab(student, url)
        assert _route(student_ctx) == other
        # ...and a follow link still reaches the teacher's process, websocket included
        open_lab(student, f"{url}?follow={code}")
        student.get_by_text(f"Following the shared run {code}").wait_for(timeout=FRAME_MS)
        student.wait_for_function("window.gan2d.step >= 10", timeout=FRAME_MS)
        assert _route(student_ctx) == route
        assert errors == []
        for server in servers.values():
            assert "Traceback" not in server.output(), server.output()
    finally:
        teacher_ctx.close()
        student_ctx.close()


def test_a_route_that_is_not_one_letter_is_ignored(monkeypatch):
    from gan2d.ui import share

    monkeypatch.setenv("GAN2D_ROUTE", "B")
    assert share._new_code(set()).startswith("B")
    monkeypatch.setenv("GAN2D_ROUTE", "../x")
    assert share.route() == "" and share.valid_code(share._new_code(set()))
