"""Each challenge's start and reference solution, tried headless on several seeds: the
README's challenge table.

    python benchmarks/challenge_table.py [--seeds 5] [--json]

For every challenge, trains its start on seed 0 and its reference solution on seeds
0 to N-1 (the tests use seeds 0-2; seeds 3 and up were never used to choose a target),
exactly as ``python -m gan2d challenge NAME`` does, and prints a Markdown row (or a JSON
line) with whether each passed, at which step, and the protocol numbers.
"""

from __future__ import annotations

import argparse
import json
import time

from gan2d.challenges import CHALLENGES, attempts


def fmt(a) -> str:
    got = a.got
    parts = [f"{'pass' if a.passed else 'fail'} @ {a.steps:,}"]
    if got.get("modes") is not None:
        parts.append(f"{got['modes']} modes, HQ {got['hq']:.0f}%")
    if got.get("w1") is not None:
        parts.append(f"W1 {got['w1']:.3f}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", action="append", help="just these challenges")
    args = parser.parse_args()
    if not args.json:
        print("| challenge | target | start (seed 0) | solution | passes |")
        print("|---|---|---|---|---|")
    for name in args.only or CHALLENGES:
        c = CHALLENGES[name]
        seeds = range(args.seeds)
        configs = [c.config] + [c.student_config({**c.solution, "seed": str(s)}) for s in seeds]
        t0 = time.perf_counter()
        start, *solved = attempts(c, configs)
        seconds = time.perf_counter() - t0
        if args.json:
            row = {
                "challenge": name,
                "start": {"passed": start.passed, "steps": start.steps, "got": start.got},
                "solution": c.solution,
                "seeds": [{"passed": a.passed, "steps": a.steps, "got": a.got} for a in solved],
                "seconds": round(seconds, 1),
            }
            print(json.dumps(row), flush=True)
            continue
        change = ", ".join(f"{k}={v}" for k, v in c.solution.items())
        passes = f"{sum(a.passed for a in solved)} of {len(solved)}: " + "; ".join(
            f"seed {s}: {fmt(a)}" for s, a in zip(seeds, solved, strict=True)
        )
        print(f"| `{name}` | {c.target} | {fmt(start)} | `{change}` | {passes} |", flush=True)


if __name__ == "__main__":
    main()
