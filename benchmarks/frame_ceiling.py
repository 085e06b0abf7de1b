"""How many frames a second this machine's trainers can make, with pages that cost nothing.

    python benchmarks/frame_ceiling.py [--sessions 30] [--speed 5] [--preset wgan-gp]
                                       [--workers N] [--seconds 30]
                                       [--trainer thread|process]

Runs ``--sessions`` labs of ``--preset`` (default: the app's default preset) at
``--speed`` steps a frame (5, as ``classroom.py`` does) in one scheduler of
``--workers`` threads (default: the server's, the number of cores), exactly as
``panel serve app`` trains them (``LabRun``: the training chunk, the snapshot, the
frame), and takes each frame the moment it is ready, as a page that painted in no time
would. No Bokeh, no websocket, no event loop: what it prints is a ceiling on what a
class of that size can get from this machine, whatever the pages cost. One JSON line:
sessions, workers, preset, frames_per_s (all sessions), min_fps and median_fps (per session),
steps_per_s (all sessions), and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

from gan2d.bench.speed import machine
from gan2d.presets import PRESETS
from gan2d.ui import trainer
from gan2d.ui.scheduler import Scheduler, default_workers
from gan2d.ui.session import LabRun
from gan2d.ui.settings import DEFAULT_PRESET, preset_base


def measure(
    sessions: int,
    speed: int,
    workers: int,
    seconds: float,
    preset: str = DEFAULT_PRESET,
    in_process: bool = False,
) -> dict:
    """``in_process``: train in a trainer process, as ``panel serve app`` does on a CPU."""
    base = preset_base(preset)
    pool = Scheduler(workers)
    if in_process:
        os.environ[trainer.TRAINER_ENV] = "process"
        trainer.serve(pool)
    ready = threading.Event()
    runs = [
        LabRun(base.config.with_changes(seed=i), speed, on_frame=ready.set, pool=pool)
        for i in range(sessions)
    ]
    counts = [0] * sessions
    steps = [-1] * sessions  # the step of the last frame each run's page took

    def take_all(count: bool) -> None:
        ready.wait(0.01)
        ready.clear()
        for i, run in enumerate(runs):
            frame = run.take_frame()
            if frame is not None:
                steps[i] = frame.step
                counts[i] += count

    deadline = time.monotonic() + 600
    while min(steps) < 0:  # every run's first frame (the first one waits for a compile)
        if time.monotonic() > deadline:
            raise SystemExit("no first frame in 10 minutes")
        take_all(count=False)
    for run in runs:
        run.play()
    warm_until = time.monotonic() + 3.0
    while time.monotonic() < warm_until:
        take_all(count=False)
    start_steps = list(steps)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        take_all(count=True)
    elapsed = time.perf_counter() - t0
    for run in runs:
        run.close()
    pool.shutdown()
    trainer.trainer().stop()
    fps = [c / elapsed for c in counts]
    return {
        "sessions": sessions,
        "workers": pool.workers,
        "threads": pool.threads,
        "preset": preset,
        "trainer": type(trainer.trainer()).__name__,
        "steps_per_frame": speed,
        "frames_per_s": round(sum(counts) / elapsed, 1),
        "min_fps": round(min(fps), 2),
        "median_fps": round(statistics.median(fps), 2),
        "steps_per_s": round((sum(steps) - sum(start_steps)) / elapsed),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--speed", type=int, default=5, help="steps per frame")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET)
    parser.add_argument(
        "--trainer",
        choices=("thread", "process"),
        default="thread",
        help="train in this process (thread) or in a trainer process, as the app does on a CPU",
    )
    args = parser.parse_args()
    result = measure(
        args.sessions,
        args.speed,
        args.workers,
        args.seconds,
        args.preset,
        in_process=args.trainer == "process",
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
