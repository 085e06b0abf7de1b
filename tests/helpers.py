"""Helpers the tests share (not a test module)."""

from __future__ import annotations

import time


def wait_until(condition, timeout: float = 60.0) -> None:
    """Poll ``condition()`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
