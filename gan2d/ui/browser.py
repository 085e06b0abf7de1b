"""The served app and a headless Chromium, for the browser tests and the benchmarks.

``AppServer`` runs ``python -m panel serve app`` on a free localhost port and keeps its
output; ``launch_chromium`` starts Debian's Chromium through Playwright with the flags
this project uses everywhere. Playwright is a test extra: it is imported only here,
when a browser is launched.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def answers(host: str, port: int) -> bool:
    """Whether the server answers ``GET /`` (no redirect following: a request for
    /app itself would open a session)."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        conn.request("GET", "/")
        conn.getresponse().read()
        conn.close()
        return True
    except OSError:
        return False


class AppServer:
    """A ``python -m panel serve app`` subprocess on a free port of ``host``."""

    def __init__(self, env: dict | None = None, host: str = "127.0.0.1", args: list | None = None):
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}/app"
        # closed in stop(); the server writes to it for as long as it runs
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w+", prefix="gan2d-serve-", suffix=".log"
        )
        command = [sys.executable, "-m", "panel", "serve", "app", "--port", str(self.port)]
        command += ["--address", host, "--allow-websocket-origin", f"{host}:{self.port}"]
        self.proc = subprocess.Popen(
            command + list(args or []),
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def pids(self) -> list[int]:
        """The server's process and its children (the trainer process), now."""
        return [self.proc.pid, *children(self.proc.pid)]

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"panel serve exited early:\n{self.output()}")
            if answers(self.host, self.port):
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

    def __enter__(self) -> AppServer:
        self.wait_ready()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def chromium_missing() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: the browser tests need Debian's chromium"
    return None


def launch_chromium(playwright):
    """Debian's Chromium, headless, with the project's flags."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it has just exited
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds(pid: int, main_thread: bool = False) -> float:
    """CPU time a process has used so far (user + system), in s (Linux): all its threads,
    or with ``main_thread`` only the thread that started it (a Panel server's event loop)."""
    with open(f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores of the machine have spent busy so far, in s (Linux)."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def record_offsite(page, here: str, into: list) -> None:
    """Append to ``into`` the address of every request ``page`` makes to a host other
    than ``here`` (the server's ``http://host:port/``)."""

    def seen(request) -> None:
        if request.url.startswith("http") and not request.url.startswith(here):
            into.append(request.url)

    page.on("request", seen)
