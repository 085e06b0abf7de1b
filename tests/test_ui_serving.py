"""Serving the app beyond one laptop: a password for a server open to the internet
(Panel's ``--basic-auth``), and the admin's limits read from the environment."""

from __future__ import annotations

import http.client
import urllib.parse

from gan2d.ui import limits
from gan2d.ui.browser import AppServer


def _cookies(response) -> str:
    return "; ".join(c.split(";")[0] for c in response.msg.get_all("Set-Cookie") or [])


def test_a_password_protected_server_lets_in_only_who_knows_it():
    server = AppServer(
        args=["--basic-auth", "class-secret", "--cookie-secret", "a-long-random-secret"]
    )
    try:
        server.wait_ready()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.request("GET", "/app")
        response = conn.getresponse()
        response.read()
        assert response.status == 302 and "login" in response.getheader("Location")

        def login(password: str):
            form = urllib.parse.urlencode({"username": "student", "password": password})
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            conn.request("POST", "/login", form, headers)
            answer = conn.getresponse()
            answer.read()
            return answer

        wrong = login("guess")
        assert "error" in wrong.getheader("Location")
        right = login("class-secret")
        conn.request("GET", "/app", headers={"Cookie": _cookies(right)})
        page = conn.getresponse()
        assert page.status == 200 and b"gan2d" in page.read()
        assert "Traceback" not in server.output()
    finally:
        server.stop()


def test_the_admins_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GAN2D_MAX_SESSIONS", "12")
    monkeypatch.setenv("GAN2D_MAX_STEPS_PER_S", "250")
    assert limits.max_sessions() == 12 and limits.max_steps_per_s() == 250.0
    monkeypatch.setenv("GAN2D_MAX_SESSIONS", "lots")  # not a number: the default holds
    monkeypatch.delenv("GAN2D_MAX_STEPS_PER_S")
    assert limits.max_sessions() >= 1 and limits.max_steps_per_s() is None


def test_panels_admin_page_is_served_beside_the_app():
    server = AppServer(args=["--admin"])
    try:
        server.wait_ready()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.request("GET", "/admin")
        response = conn.getresponse()
        assert response.status == 200 and b"admin" in response.read().lower()
    finally:
        server.stop()
