"""What the admin of a server sets, by environment variable (read when used):

- ``GAN2D_WORKERS``: worker threads that train every session (default: the cores);
- ``GAN2D_MAX_SESSIONS``: open lab sessions before a new one is told the server is
  full (default: half the host memory available at start, over ``SESSION_MB``);
- ``GAN2D_MAX_STEPS_PER_S``: a ceiling on each session's training steps per second, so
  that a few fast labs cannot slow everyone (default: none);
- ``GAN2D_ROUTE``: this process's letter when several serve one class behind a proxy
  (its share codes start with it; see ``gan2d.ui.share.route``).
"""

from __future__ import annotations

import functools

from gan2d.core.memory import MIB, host_available_bytes
from gan2d.ui.scheduler import env_number

MAX_SESSIONS_ENV = "GAN2D_MAX_SESSIONS"
MAX_STEPS_ENV = "GAN2D_MAX_STEPS_PER_S"
#: memory one open lab session holds on the server: its page's Bokeh document, its
#: run's state and frames (measured with benchmarks/classroom.py; generous)
SESSION_MB = 40
MEMORY_SHARE = 0.5


@functools.lru_cache(maxsize=1)
def _memory_sessions() -> int:
    available, _ = host_available_bytes()
    return max(1, int(available * MEMORY_SHARE / (SESSION_MB * MIB)))


def max_sessions() -> int:
    """Open lab sessions this server takes (``GAN2D_MAX_SESSIONS``, else by memory)."""
    return env_number(MAX_SESSIONS_ENV) or _memory_sessions()


def max_steps_per_s() -> float | None:
    """Each session's ceiling on training steps per second, or None."""
    return env_number(MAX_STEPS_ENV, kind=float, minimum=1.0)
