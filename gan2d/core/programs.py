"""The compile cache: every compiled program of the process, in one place.

A program is keyed by the static part of a config (``Config.static_part()``) plus
what it is (``"chunk"``, ``"init"``, ``"snapshot"``...) and the few values that change
its shapes (number of runs, steps per chunk). All callers share it: app sessions,
the Compare and Sweep tabs, sweeps and the CLI. Two threads asking for the same program
compile it once; the second waits for the first.

Programs also persist across processes through JAX's persistent compilation cache, so
a restarted server or a second ``gan2d train`` loads them instead of compiling. It is on
by default, in ``$XDG_CACHE_HOME/gan2d/jax`` (``~/.cache/gan2d/jax``); set
``GAN2D_COMPILE_CACHE`` to another folder, or to ``off`` to turn it off.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import jax

#: how many compiled programs the process keeps (least recently used go first)
MAX_PROGRAMS = 256
CACHE_ENV = "GAN2D_COMPILE_CACHE"


def persistent_cache_dir() -> Path | None:
    """Where compiled programs persist across processes, or None when turned off."""
    setting = os.environ.get(CACHE_ENV, "").strip()
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gan2d" / "jax"


_persistent_lock = threading.Lock()
_persistent_done = False


def enable_persistent_cache() -> Path | None:
    """Point JAX's persistent compilation cache at ``persistent_cache_dir()`` (once per
    process; a folder that cannot be created leaves it off). Returns the folder used."""
    global _persistent_done
    with _persistent_lock:
        folder = persistent_cache_dir()
        if _persistent_done or folder is None:
            return folder
        _persistent_done = True
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        jax.config.update("jax_compilation_cache_dir", str(folder))
        # our programs compile in 0.1-10 s: keep them all, small or quick ones too
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        return folder


class ProgramCache:
    """Compiled programs by key, built once each, least recently used dropped first."""

    def __init__(self, max_programs: int = MAX_PROGRAMS):
        self.max_programs = max_programs
        self._programs: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._building: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.compile_seconds: dict[Hashable, float] = {}

    def has(self, key: Hashable) -> bool:
        """Whether ``key`` is compiled: a call with it will not wait for a compile."""
        with self._lock:
            return key in self._programs

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The program for ``key``; ``build()`` compiles it the first time."""
        while True:
            with self._lock:
                if key in self._programs:
                    self._programs.move_to_end(key)
                    return self._programs[key]
                waiting = self._building.get(key)
                if waiting is None:
                    self._building[key] = threading.Event()
                    break
            waiting.wait()
        enable_persistent_cache()
        program = None
        try:
            t0 = time.perf_counter()
            program = build()
            seconds = time.perf_counter() - t0
        finally:
            with self._lock:
                done = self._building.pop(key)
                if program is not None:
                    self._programs[key] = program
                    self.compile_seconds[key] = seconds
                    while len(self._programs) > self.max_programs:
                        old, _ = self._programs.popitem(last=False)
                        self.compile_seconds.pop(old, None)
            done.set()  # waiters take the program, or try the build themselves
        return program

    def clear(self) -> None:
        with self._lock:
            self._programs.clear()
            self.compile_seconds.clear()


#: the process-wide cache
PROGRAMS = ProgramCache()
