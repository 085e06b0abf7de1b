"""Mean protocol metrics of presets over several seeds: the README's quality table.

    python benchmarks/preset_table.py [--seeds 5] [--preset NAME ...] [--steps N] [--json]

Each run is exactly ``python -m gan2d train --preset NAME --seed S`` (same code path,
same evaluation), so any row can be checked one seed at a time with the CLI.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import numpy as np

from gan2d.config import PRESETS, get_preset
from gan2d.train import evaluate_state, train_run


def preset_row(name: str, seeds: list[int], steps: int | None = None) -> dict:
    preset = get_preset(name)
    steps = steps or preset.steps
    runs = []
    for seed in seeds:
        config = preset.config.with_changes(seed=seed)
        run = train_run(config, steps)
        result = evaluate_state(config, run.state)
        runs.append(
            {k: result[k] for k in ("modes", "hq", "rkl", "w1")} | {"steps_per_s": run.steps_per_s}
        )
    row = {"preset": name, "seeds": len(seeds), "steps": steps}
    for key in ("modes", "hq", "rkl", "w1", "steps_per_s"):
        values = np.array([np.nan if r[key] is None else r[key] for r in runs], float)
        row[key] = float(np.nanmean(values)) if np.isfinite(values).any() else None
        row[f"{key}_min"] = float(np.nanmin(values)) if np.isfinite(values).any() else None
    row["per_seed_modes"] = [r["modes"] for r in runs]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--preset", action="append", choices=list(PRESETS))
    parser.add_argument("--steps", type=int)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = args.preset or list(PRESETS)
    print(
        f"# {platform.processor() or platform.machine()}, {jax.devices()[0]}, "
        f"jax {jax.__version__}, {args.seeds} seeds",
        flush=True,
    )
    for name in names:
        t0 = time.perf_counter()
        row = preset_row(name, list(range(args.seeds)), args.steps)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            rkl = "-" if row["rkl"] is None else f"{row['rkl']:.3f}"
            print(
                f"| {name} | {row['steps']} | {row['modes']:.1f} | {row['hq']:.1f} | {rkl} "
                f"| {row['w1']:.3f} | {row['steps_per_s']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
