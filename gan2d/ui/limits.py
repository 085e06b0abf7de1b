"""What the admin of a server sets, by environment variable (read when used):

- ``GAN2D_WORKERS``: worker threads that train every session (default: the cores);
- ``GAN2D_MAX_SESSIONS``: open lab sessions before a new one is told the server is
  full (default: half the host memory available at start, over ``SESSION_MB``);
- ``GAN2D_MAX_STEPS_PER_S``: a ceiling on each session's training steps per second, so
  that a few fast labs cannot slow everyone (default: none);
- ``GAN2D_FRAME_RATE``: the frames per second a lab keeps on a busy server by training
  fewer steps a frame than its page asks (default ``FRAME_RATE``; 0 turns it off);
- ``GAN2D_ROUTE``: this process's letter when several serve one class behind a proxy
  (its share codes start with it; see ``gan2d.ui.share.route``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import threading

from gan2d.core.memory import MIB, host_available_bytes
from gan2d.ui.scheduler import env_number

MAX_SESSIONS_ENV = "GAN2D_MAX_SESSIONS"
MAX_STEPS_ENV = "GAN2D_MAX_STEPS_PER_S"
FRAME_RATE_ENV = "GAN2D_FRAME_RATE"
FRAME_RATE = 6.0
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


def frame_rate() -> float | None:
    """The frames per second a lab keeps on a busy server (``GAN2D_FRAME_RATE``, else
    ``FRAME_RATE``), or None when set to 0: then a frame always trains the steps asked."""
    raw = os.environ.get(FRAME_RATE_ENV, "").strip().lower()
    if raw == "off" or _is_zero(raw):
        return None
    return env_number(FRAME_RATE_ENV, kind=float, minimum=0.1) or FRAME_RATE


def _is_zero(raw: str) -> bool:
    try:
        return float(raw) == 0.0
    except ValueError:
        return False


#: seconds after a lab closed before the server collects what it left and hands the
#: freed memory back
RELEASE_AFTER_S = 5.0
_release_timer: threading.Timer | None = None
_release_lock = threading.Lock()


def release_memory_soon(delay: float = RELEASE_AFTER_S) -> None:
    """Collect what closed sessions left and hand the freed memory back to the system,
    ``delay`` seconds after the first call since the last time it was done (closings
    come in bursts: one pass for a burst; a steady stream of closings still gets one
    every ``delay`` seconds, so what they leave never piles up). Python frees a closed
    page's objects, but the C allocator keeps the freed pages for reuse, so after a
    class the server looked hundreds of MB bigger than when idle; ``malloc_trim``
    returns them (glibc only: elsewhere nothing happens)."""
    global _release_timer
    with _release_lock:
        if _release_timer is not None:
            return
        _release_timer = threading.Timer(delay, _release_now)
        _release_timer.daemon = True
        _release_timer.start()


def _release_now() -> None:
    global _release_timer
    with _release_lock:
        _release_timer = None  # a session closed from now on gets a pass of its own
    release_memory()


def keep_out_of_collections() -> None:
    """Leave every object alive now out of Python's full garbage collections (from
    ``Lab.connect``, once a page is built).

    A page is some 40,000 Python objects that live as long as the page, and a full
    collection walks every one of them: with 30 pages open, each took about 1.8 s on a
    slow 2-core host, every 25 s or so, and the whole server (every page's frames, the
    trainers) stood still meanwhile. Frozen (``gc.freeze``), they are skipped; what a
    closed page leaves in reference cycles is collected by ``release_memory``, which
    thaws the heap first. The young generation is collected first, so that the
    garbage of the page's build is not kept."""
    gc.collect(1)
    gc.freeze()


def release_memory() -> bool:
    """Collect garbage (closed pages' objects, frozen ones included: see
    ``keep_out_of_collections``) and return the allocator's free pages; False where
    the C library has no ``malloc_trim``."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()  # the pages still open: out of collections again
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True
