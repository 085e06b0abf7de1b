"""How long a change of a data setting (a learning rate) takes a lab's worker, with and
without another thread busy in Python.

    python benchmarks/settings_change.py [--preset ns-gan] [--changes 30]

On a busy server the event loop holds Python's lock (GIL) much of the time, and every
array a worker passes into a compiled program or brings back can wait for it. This
stands in for the event loop with one thread that runs pure Python, and times
``transition`` for a learning-rate change of one lab's run, two ways:

- ``plain``: unpack the packed state, apply the change to the ~90-array state, pack it
  again (what the lab did before ``transition(..., packed=True)``);
- ``packed``: the change written into the packed state in one call.

One JSON line: preset, changes, and for each way and each case (``alone``, ``busy``)
the median and 90th percentile in milliseconds, and the machine.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import jax
import numpy as np

from gan2d.bench.speed import machine
from gan2d.core.runs import Runs, transition
from gan2d.presets import PRESETS
from gan2d.ui.settings import preset_base


def plain(runs: Runs, packed, config):
    change = transition(runs, runs.unpack(packed), [config])
    return change.runs.pack(change.state)


def packed_change(runs: Runs, packed, config):
    return transition(runs, packed, [config], packed=True).state


def timed(way, runs: Runs, packed, config, changes: int) -> tuple[dict, tuple]:
    rates = [config.lr_d * (1 + i % 3) for i in range(changes + 3)]
    seconds = []
    for i, lr in enumerate(rates):
        t0 = time.perf_counter()
        packed = way(runs, packed, config.with_changes(lr_d=lr))
        jax.block_until_ready(packed)
        if i >= 3:  # the first ones compile
            seconds.append(time.perf_counter() - t0)
    ms = np.array(seconds) * 1000
    return {
        "median_ms": round(float(np.median(ms)), 1),
        "p90_ms": round(float(np.percentile(ms, 90)), 1),
    }, packed


def measure(preset: str, changes: int) -> dict:
    config = preset_base(preset).config
    runs = Runs([config])
    packed = runs.pack(runs.init())
    out = {"preset": preset, "changes": changes}
    for case in ("alone", "busy"):
        stop = threading.Event()
        if case == "busy":

            def spin(stop=stop):
                n = 0
                while not stop.is_set():
                    n += 1

            threading.Thread(target=spin, daemon=True).start()
        try:
            for name, way in (("plain", plain), ("packed", packed_change)):
                out[f"{name}_{case}"], packed = timed(way, runs, packed, config, changes)
        finally:
            stop.set()
    out["machine"] = machine()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=list(PRESETS), default="ns-gan")
    parser.add_argument("--changes", type=int, default=30)
    args = parser.parse_args()
    if args.changes < 1:
        parser.error("--changes >= 1")
    print(json.dumps(measure(args.preset, args.changes)))


if __name__ == "__main__":
    main()
