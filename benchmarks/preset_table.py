"""Mean protocol metrics of presets over several seeds: the README's quality table.

    python benchmarks/preset_table.py [--seeds 5] [--first-seed 0] [--preset NAME ...]
        [--steps N] [--json]

The seeds of a preset train together as one vmapped program (``gan2d.sweep``); each run
equals ``python -m gan2d train --preset NAME --seed S`` (a test checks that a sweep run
equals the single run), and is scored the same way, so any row can be checked one seed
at a time with the CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from gan2d.core.sweep import run_sweep
from gan2d.presets import PRESETS, get_preset


def preset_row(name: str, seeds: list[int], steps: int | None = None) -> dict:
    preset = get_preset(name)
    steps = steps or preset.steps
    t0 = time.perf_counter()
    result = run_sweep(preset.config, {}, seeds, steps)
    (summary,) = result.cell_summaries()
    row = {"preset": name, "seeds": len(seeds), "steps": steps}
    for key in ("modes", "hq", "rkl", "w1"):
        row[key] = summary[f"{key}_mean"]
        row[f"{key}_std"] = summary[f"{key}_std"]
    row["per_seed_modes"] = [m["modes"] for m in result.run_metrics]
    row["per_seed_hq"] = [round(m["hq"], 1) for m in result.run_metrics]
    row["diverged"] = summary["diverged"]
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def _cell(value, fmt: str) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and np.isnan(value))
        else (format(value, fmt))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ..."
    )
    parser.add_argument("--preset", action="append", choices=list(PRESETS))
    parser.add_argument("--steps", type=int)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = args.preset or list(PRESETS)
    if args.seeds < 1 or args.first_seed < 0:
        parser.error("--seeds must be at least 1 and --first-seed at least 0")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print(
        f"# {os.cpu_count()} CPUs, {jax.devices()[0]}, jax {jax.__version__}, "
        f"{args.seeds} seeds ({seeds[0]}..{seeds[-1]})",
        flush=True,
    )
    if not args.json:
        print("| preset | steps | modes | HQ % | rkl | W1 | seconds |")
        print("|---|---|---|---|---|---|---|")
    for name in names:
        row = preset_row(name, seeds, args.steps)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(
                f"| `{name}` | {row['steps']} | {_cell(row['modes'], '.1f')} | "
                f"{_cell(row['hq'], '.1f')} | {_cell(row['rkl'], '.3f')} | "
                f"{_cell(row['w1'], '.3f')} | {row['seconds']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
