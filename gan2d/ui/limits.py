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

import ctypes
import ctypes.util
import functools
import gc
import threading

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


#: seconds after the last lab closed before the server hands freed memory back
RELEASE_AFTER_S = 5.0
_release_timer: threading.Timer | None = None
_release_lock = threading.Lock()


def release_memory_soon(delay: float = RELEASE_AFTER_S) -> None:
    """Hand memory freed by closed sessions back to the system once the closing has
    settled (``delay`` seconds after the last call). Python frees a closed page's
    objects, but the C allocator keeps the freed pages for reuse, so after a class
    the server looked hundreds of MB bigger than when idle; ``malloc_trim`` returns
    them (glibc only: elsewhere nothing happens)."""
    global _release_timer
    with _release_lock:
        if _release_timer is not None:
            _release_timer.cancel()
        _release_timer = threading.Timer(delay, release_memory)
        _release_timer.daemon = True
        _release_timer.start()


def release_memory() -> bool:
    """Collect garbage and return the allocator's free pages; False where the C
    library has no ``malloc_trim``."""
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True
