"""The compile cache: least recently used programs go past a count, and while the
process maps too many memory regions (each compiled XLA program maps its code in
hundreds of them, and Linux ends a process that asks for more than its limit)."""

import gc
import sys
import weakref
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from gan2d.core.programs import ProgramCache, map_budget, memory_maps


class Program:
    """A stand-in program that maps ``REGIONS`` memory regions while it is alive."""

    REGIONS = 300


class Process:
    """Counts the regions of the stand-in programs still alive, as /proc/self/maps
    counts a real program's until it is dropped by everyone holding it."""

    def __init__(self, base=100):
        self.base = base
        self.alive = weakref.WeakSet()

    def build(self):
        program = Program()
        self.alive.add(program)
        return program

    def maps(self):
        return self.base + Program.REGIONS * len(self.alive)


def test_programs_go_least_recently_used_first_while_the_process_maps_too_much():
    process = Process()
    cache = ProgramCache(max_maps=1000, count_maps=process.maps, min_programs=1)
    for key in "abc":
        cache.get(key, process.build)
    assert len(cache) == 3 and process.maps() == 1000  # at the budget, not over it
    cache.get("a", process.build)  # a is used again: b is now the oldest
    cache.get("d", process.build)
    assert not cache.has("b") and all(cache.has(k) for k in "acd")
    assert process.maps() <= 1000 and cache.dropped_for_maps == 1
    assert "b" not in cache.compile_seconds


def test_programs_still_held_elsewhere_leave_the_newest_few_in_the_cache():
    process = Process()
    cache = ProgramCache(max_maps=1000, count_maps=process.maps, min_programs=2)
    held = [cache.get(key, process.build) for key in "abcdef"]  # runs keep all of them
    assert process.maps() > 1000  # dropping them from the cache gives nothing back
    assert len(cache) == 2 and cache.has("e") and cache.has("f")
    assert len(held) == 6


def test_without_a_count_of_regions_only_the_number_of_programs_bounds_the_cache():
    process = Process()
    cache = ProgramCache(max_programs=3, max_maps=1000, count_maps=lambda: None)
    for key in "abcde":
        cache.get(key, process.build)
    assert len(cache) == 3 and cache.has("c") and not cache.has("b")
    assert cache.dropped_for_maps == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/maps")
def test_a_compiled_program_maps_regions_and_gives_them_back_when_dropped():
    assert 1000 < map_budget() < int(Path("/proc/sys/vm/max_map_count").read_text())

    def build(width):
        def program():
            def loss(x):
                for _ in range(3):
                    x = jnp.tanh(x @ x.T @ x)
                return jnp.sin(x).max()

            fn = jax.jit(jax.grad(loss))
            return fn.lower(jax.ShapeDtypeStruct((width, 3), jnp.float32)).compile()

        return program

    build(4)()  # the process's first compile maps what every later one shares
    cache = ProgramCache(max_maps=10**9)
    gc.collect()
    before = memory_maps()
    for width in range(5, 13):
        cache.get(width, build(width))
    grown = memory_maps() - before
    assert grown >= 8 * 5, grown  # every program maps several regions of its own
    cache.clear()
    gc.collect()
    assert memory_maps() - before < grown / 4
