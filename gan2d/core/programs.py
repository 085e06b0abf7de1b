"""The compile cache: every compiled program of the process, in one place.

A program is keyed by the static part of a config (``Config.static_part()``) plus
what it is (``"chunk"``, ``"init"``, ``"snapshot"``...) and the few values that change
its shapes (number of runs, steps per chunk). All callers share it: app sessions,
the Compare and Sweep tabs, sweeps and the CLI. Two threads asking for the same program
compile it once; the second waits for the first.

The cache is bounded by what the programs hold, not only by their number. A compiled
XLA CPU program maps its code into the process in many small memory regions (about 500
for a lab's training chunk) and gives them back only when it is dropped. Linux refuses
a process more than ``vm.max_map_count`` regions (65,530 by default), and an mmap that
fails inside XLA's compiler ends the process; so after each compile, while the process
maps more than ``MAP_SHARE`` of that limit, the least recently used programs go.

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
#: the share of the kernel's limit on memory regions the process may map before the
#: least recently used programs are dropped
MAP_SHARE = 0.6
#: the most recently used programs kept whatever the count of regions says
MIN_PROGRAMS = 8
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


def memory_maps() -> int | None:
    """How many memory regions this process maps (Linux), or None where unknown."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            return maps.read().count(b"\n")
    except OSError:
        return None


def map_budget(share: float = MAP_SHARE) -> int | None:
    """How many memory regions the cache lets the process map before it drops programs:
    ``share`` of the kernel's ``vm.max_map_count``, or None where there is no such limit."""
    try:
        return int(int(Path("/proc/sys/vm/max_map_count").read_text()) * share)
    except (OSError, ValueError):
        return None


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
    """Compiled programs by key, built once each, least recently used dropped first:
    past ``max_programs`` programs, or while the process maps more than ``max_maps``
    memory regions (as ``count_maps()`` counts them after a compile), keeping at least
    the ``min_programs`` most recently used."""

    def __init__(
        self,
        max_programs: int = MAX_PROGRAMS,
        max_maps: int | None = None,
        count_maps: Callable[[], int | None] = memory_maps,
        min_programs: int = MIN_PROGRAMS,
    ):
        self.max_programs = max_programs
        self.max_maps = map_budget() if max_maps is None else max_maps
        self.count_maps = count_maps
        self.min_programs = min_programs
        #: how many programs were dropped to keep the process under ``max_maps``
        self.dropped_for_maps = 0
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
                        self._drop_oldest()
            done.set()  # waiters take the program, or try the build themselves
        self._drop_for_maps()
        return program

    def _drop_oldest(self) -> None:
        old, _ = self._programs.popitem(last=False)
        self.compile_seconds.pop(old, None)

    def _drop_for_maps(self) -> None:
        """Drop the least recently used programs while the process maps too many memory
        regions (a dropped program gives its regions back once no run holds it). The
        regions are counted outside the lock: other threads keep finding programs."""
        if self.max_maps is None:
            return
        while True:
            maps = self.count_maps()
            if maps is None or maps <= self.max_maps:
                return
            with self._lock:
                if len(self._programs) <= self.min_programs:
                    return
                self._drop_oldest()
                self.dropped_for_maps += 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._programs)

    def clear(self) -> None:
        with self._lock:
            self._programs.clear()
            self.compile_seconds.clear()


#: the process-wide cache
PROGRAMS = ProgramCache()
