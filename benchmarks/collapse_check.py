"""Does a config show the textbook mode collapse? Checked per seed, by the protocol.

    python benchmarks/collapse_check.py [--preset vanilla-collapse] [--set k=v]...
        [--seeds 5,6,7,8,9] [--steps N] [--every 100] [--live]

Trains the seeds as one batch and, every ``--every`` steps, scores each run's 2,500
protocol samples (``gan2d.core.metrics.mode_metrics``). A seed shows the textbook
picture when all three hold:

- it never covers more than 2 modes at once (a mode counts with one HQ sample);
- after its first collapse (the first check with HQ >= 80% on at most 2 modes), most
  checks (over half) have HQ >= 80%: the fakes sit on a real mode;
- over the run its fakes visit at least 3 different modes (the mode holding most HQ
  samples at each check, counted over the checks after the first collapse).

``--live`` checks the config at the size the app trains it on this machine
(``gan2d.presets.live_config``). Prints one JSON line per seed and a summary line;
``--series`` adds each seed's checks as modes/HQ%/top-mode triples.
"""

from __future__ import annotations

import argparse
import json

import jax
import numpy as np

from gan2d.core import data, metrics
from gan2d.core.config import Config
from gan2d.core.evaluate import SAMPLE_SEED_OFFSET, generate
from gan2d.core.runs import Runs, run_state
from gan2d.core.spec import parse_sets
from gan2d.presets import get_preset, live_config

HQ_COLLAPSED = 80.0
MAX_MODES = 2
MIN_VISITED = 3


def verdict(series: list[dict]) -> dict:
    """The three criteria for one seed's checks (dicts with modes, hq, top)."""
    max_modes = max(s["modes"] for s in series)
    first = next(
        (i for i, s in enumerate(series) if s["hq"] >= HQ_COLLAPSED and 1 <= s["modes"] <= 2),
        None,
    )
    after = series[first:] if first is not None else []
    hq_share = float(np.mean([s["hq"] >= HQ_COLLAPSED for s in after])) if after else 0.0
    visited = sorted({s["top"] for s in after if s["top"] is not None})
    ok = max_modes <= MAX_MODES and hq_share > 0.5 and len(visited) >= MIN_VISITED
    return {
        "passed": bool(ok),
        "max_modes": max_modes,
        "first_collapse_step": None if first is None else series[first]["step"],
        "hq_share_after": round(hq_share, 2),
        "visited": visited,
    }


def checks(config: Config, seeds: list[int], steps: int, every: int) -> list[list[dict]]:
    """Each seed's checks, every ``every`` steps: dicts with step, modes, hq and top (the
    mode holding most HQ samples, None when none is HQ)."""
    configs = [config.with_changes(seed=s) for s in seeds]
    runs = Runs(configs)
    state = runs.init()
    means = data.mode_means(config)
    series: list[list[dict]] = [[] for _ in seeds]
    for done in range(every, steps + 1, every):
        state, _ = runs.chunk(state, every)
        for i, c in enumerate(configs):
            one = run_state(state, i)
            fake = generate(c, one["g"], metrics.PROTOCOL_SAMPLES, c.seed + SAMPLE_SEED_OFFSET)
            if not np.isfinite(fake).all():
                series[i].append({"step": done, "modes": 0, "hq": 0.0, "top": None})
                continue
            m = metrics.mode_metrics(fake, means, c.data_std)
            counts = np.asarray(m["mode_counts"])
            top = int(counts.argmax()) if counts.sum() > 0 else None
            series[i].append({"step": done, "modes": m["modes"], "hq": m["hq"], "top": top})
    jax.block_until_ready(state)
    return series


def check(
    config: Config, seeds: list[int], steps: int, every: int, series_out: bool = False
) -> list[dict]:
    """One row per seed: its ``verdict`` (and its checks, with ``series_out``)."""
    series = checks(config, seeds, steps, every)
    rows = [{"seed": s, **verdict(series[i])} for i, s in enumerate(seeds)]
    if series_out:
        for row, one in zip(rows, series, strict=True):
            row["series"] = " ".join(f"{c['modes']}/{c['hq']:.0f}/{c['top']}" for c in one)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vanilla-collapse")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", default="5,6,7,8,9")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--live", action="store_true", help="at the app's live size")
    parser.add_argument("--series", action="store_true", help="print every check too")
    args = parser.parse_args()
    preset = get_preset(args.preset)
    config = Config.from_dict(parse_sets(args.set), base=preset.config)
    if args.live:
        config = live_config(config)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = check(config, seeds, args.steps or preset.steps, args.every, args.series)
    for row in rows:
        print(json.dumps(row), flush=True)
    passed = sum(r["passed"] for r in rows)
    print(json.dumps({"summary": True, "passed": passed, "of": len(rows),
                      "config": config.to_dict(only_changed=True)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
