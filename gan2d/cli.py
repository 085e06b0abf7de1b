"""``python -m gan2d``: presets, train, eval, theory, bench, sweep, challenges.

Every subcommand prints one JSON line on stdout (``bench`` prints a table unless
``--json``). Bad input exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from gan2d.core.config import Config
from gan2d.core.spec import parse_sets
from gan2d.presets import PRESETS, get_preset


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage over several lines
        raise UsageError(f"{self.prog}: {message}")


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(result: dict) -> None:
    print(json.dumps(_json_safe(result)), flush=True)


def config_from_args(
    preset: str | None, sets: list[str], seed: int | None, base: Config | None = None
) -> Config:
    """``--set`` and ``--seed`` on top of ``base``, else the preset, else the defaults."""
    if base is None:
        base = get_preset(preset).config if preset else Config()
    overrides = parse_sets(sets or [])
    if seed is not None:
        overrides["seed"] = str(seed)
    return Config.from_dict(overrides, base=base)


# ---------------------------------------------------------------- subcommands


def steps_from_args(args, preset: str | None = None) -> int:
    """``--steps``, else the preset's own step count, else 5000. ``preset``: the one a
    config file names, when ``--preset`` is not given."""
    steps = args.steps
    preset = args.preset or preset
    if steps is None:
        steps = PRESETS[preset].steps if preset in PRESETS else 5000
    if steps < 1:
        raise UsageError(f"--steps={steps} must be at least 1")
    return steps


def cmd_presets(args) -> None:
    if args.json:
        emit({name: p.summary for name, p in PRESETS.items()})
        return
    width = max(len(n) for n in PRESETS)
    for name, p in PRESETS.items():
        print(f"{name:<{width}}  {p.summary}")


def cmd_train(args) -> None:
    from gan2d.core import runfile
    from gan2d.core.evaluate import evaluate
    from gan2d.core.runs import train_run

    if args.preset and args.config:
        raise UsageError("give --preset or --config, not both: each names the base config")
    base, preset = (None, args.preset)
    if args.config:
        base, preset = load_config(args.config)
    config = config_from_args(preset, args.set, args.seed, base=base)
    steps = steps_from_args(args, preset)
    for flag in ("out", "save_config", "save_weights"):
        if getattr(args, flag):
            _check_writable(getattr(args, flag), "--" + flag.replace("_", "-"))
    init_state = load_weights(args.init, config, "--init") if args.init else None
    run = train_run(config, steps, init_state=init_state)
    samples, real, result = evaluate(config, run.state, w1=args.w1)
    out = {
        "preset": preset,
        "steps": steps,
        "start_step": int(run.state["step"]) - steps,
        "seconds": round(run.seconds, 3),
        "compile_seconds": round(run.compile_seconds, 3),
        "steps_per_s": round(run.steps_per_s, 1),
        **result,
        "w1_kind": args.w1,
        "final_d_loss": float(run.history["d_loss"][-1]),
        "final_g_loss": float(run.history["g_loss"][-1]),
        "seed": config.seed,
        "config": config.to_dict(only_changed=True),
    }
    if args.out:
        np.savez_compressed(
            args.out,
            samples=samples.astype(np.float32),
            real=real.astype(np.float32),
            config=json.dumps(config.to_dict()),
            **{f"history_{k}": v for k, v in run.history.items()},
        )
        out["out"] = args.out
    if args.save_config:
        _write(args.save_config, "--save-config", runfile.config_json(config, preset).encode())
        out["config_file"] = args.save_config
    if args.save_weights:
        _write(args.save_weights, "--save-weights", runfile.weights_npz(config, run.state, preset))
        out["weights_file"] = args.save_weights
    emit(out)


def _check_writable(path: str, flag: str = "--out") -> None:
    if Path(path).is_dir():
        raise UsageError(f"{flag} {path}: is a folder, not a file")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: folder {parent} does not exist")


def _write(path: str, flag: str, content: bytes) -> None:
    try:
        Path(path).write_bytes(content)
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot be written ({err.strerror})") from None


def _read(path: str, flag: str, limit: int | None = None) -> bytes:
    """The bytes of the file ``flag`` names; ``UsageError`` if it is missing, unreadable
    or over ``limit`` bytes."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{flag} {path}: no such file")
    try:
        size = file.stat().st_size
        if limit is not None and size > limit:
            raise UsageError(f"{flag} {path}: {size:,} bytes, over the limit of {limit:,} bytes")
        return file.read_bytes()
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot be read ({err.strerror})") from None


def load_config(path: str, flag: str = "--config") -> tuple[Config, str | None]:
    """The config and preset name in the config file at ``path``."""
    from gan2d.core import runfile

    raw = _read(path, flag, runfile.MAX_CONFIG_BYTES)
    return runfile.config_from_json(raw, name=f"{flag} {path}", allow_paths=True)


def load_weights(path: str, config: Config, flag: str):
    """One run's state from the weights file at ``path``, for ``config``."""
    from gan2d.core import runfile

    return runfile.state_from_npz(_read(path, flag), config, name=f"{flag} {path}")


def cmd_eval(args) -> None:
    if args.config or args.weights:
        if args.samples or args.dataset:
            raise UsageError(
                "give --samples FILE.npy --dataset NAME, or --config FILE.json "
                "--weights FILE.npz, not both"
            )
        if not (args.config and args.weights):
            raise UsageError("eval needs both --config FILE.json and --weights FILE.npz")
        eval_weights(args)
    elif args.samples and args.dataset:
        if args.w1 != "exact":
            raise UsageError("--w1 sliced applies to --config/--weights; samples get the exact W1")
        eval_samples(args)
    else:
        raise UsageError(
            "eval needs --samples FILE.npy --dataset NAME, or --config FILE.json --weights FILE.npz"
        )


def eval_weights(args) -> None:
    """The protocol metrics of the generator in a weights file."""
    from gan2d.core.evaluate import evaluate

    base, preset = load_config(args.config)
    config = config_from_args(preset, args.set, None, base=base)
    state = load_weights(args.weights, config, "--weights")
    result = evaluate(config, state, w1=args.w1).metrics
    out = {"preset": preset, "step": int(state["step"]), **result, "w1_kind": args.w1}
    out["seed"] = config.seed
    emit({**out, "config": config.to_dict(only_changed=True)})


def eval_samples(args) -> None:
    """The protocol metrics of saved samples."""
    from gan2d.core import data, metrics
    from gan2d.core.evaluate import protocol_real

    path = Path(args.samples)
    if not path.is_file():
        raise UsageError(f"--samples {args.samples}: no such file")
    try:
        samples = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise UsageError(f"--samples {args.samples}: not a readable .npy file ({err})") from None
    samples = np.asarray(samples)
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise UsageError(f"--samples {args.samples}: expected shape (N, 2), got {samples.shape}")
    if not np.issubdtype(samples.dtype, np.number):
        raise UsageError(f"--samples {args.samples}: not numeric ({samples.dtype})")
    if not np.isfinite(samples).all():
        raise UsageError(f"--samples {args.samples}: contains NaN or infinite values")
    sets = list(args.set or []) + [f"dataset={args.dataset}"]
    config = config_from_args(None, sets, None)
    real = protocol_real(config, len(samples))
    out = {
        "dataset": args.dataset,
        "n": int(len(samples)),
        **metrics.evaluate(samples, real, data.mode_means(config), config.data_std),
    }
    out.pop("mode_counts", None)
    if len(samples) != metrics.PROTOCOL_SAMPLES:
        out["note"] = f"the protocol uses {metrics.PROTOCOL_SAMPLES} samples"
    emit(out)


def cmd_theory(args) -> None:
    from gan2d.theory.run import run_theory

    emit(run_theory(args.kind, parse_sets(args.set or [])))


def _parse_size(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    try:
        width, depth, batch = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--size {text!r}: expected WIDTHxDEPTHxBATCH, e.g. 128x3x256") from None
    Config(width=width, depth=depth, batch_size=batch).validate()
    return width, depth, batch


def _parse_runs(text: str) -> tuple[int, ...]:
    try:
        runs = tuple(int(r) for r in text.split(",") if r.strip())
    except ValueError:
        raise UsageError(f"--runs {text!r}: expected run counts, e.g. 16,128") from None
    if any(r < 1 for r in runs):
        raise UsageError(f"--runs {text!r}: run counts must be at least 1")
    return runs


def cmd_bench(args) -> None:
    from dataclasses import replace

    from gan2d.bench import speed as bench

    plan = bench.quick_plan() if args.quick else bench.full_plan()
    changes: dict = {"torch": not args.no_torch}
    if args.size:
        changes["sizes"] = tuple(_parse_size(s) for s in args.size)
    if args.runs is not None:
        changes["runs"] = _parse_runs(args.runs)
    if args.loss:
        changes["losses"] = tuple(dict.fromkeys(args.loss))
    if args.seconds is not None:
        if not 0 < args.seconds <= 60:
            raise UsageError(f"--seconds={args.seconds} must be in (0, 60]")
        changes["seconds"] = args.seconds
    if len(changes) > 1:
        changes["notes"] = plan.notes + ("sizes, runs or timing window set on the command line",)
    plan = replace(plan, **changes)
    log = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    report = bench.run_bench(plan, log=log)
    if args.json:
        emit(report)
    else:
        print(bench.format_table(report), flush=True)


def cmd_sweep(args) -> None:
    from gan2d.core import sweep

    base = config_from_args(args.preset, args.set, args.seed)
    grid = sweep.parse_grid(args.grid or [])
    steps = steps_from_args(args)
    if args.seeds < 1:
        raise UsageError(f"--seeds={args.seeds} must be at least 1")
    if args.max_memory_mb is not None and args.max_memory_mb <= 0:
        raise UsageError(f"--max-memory-mb={args.max_memory_mb} must be positive")
    if args.out:
        _check_writable(args.out)
    seeds = [base.seed + i for i in range(args.seeds)]
    result = sweep.run_sweep(base, grid, seeds, steps, max_memory_mb=args.max_memory_mb, w1=args.w1)
    for row in result.cell_summaries():
        emit({"preset": args.preset, "steps": steps, **row})
    totals = {"preset": args.preset, "grid": {k: list(v) for k, v in grid.items()}}
    totals.update(result.totals())
    if args.out:
        result.save(args.out)
        totals["out"] = args.out
    emit({"summary": True, **totals})


def cmd_challenges(args) -> None:
    from gan2d.challenges import CHALLENGES

    if args.json:
        emit(
            {
                name: {"title": c.title, "target": c.target, "may_change": list(c.allowed)}
                for name, c in CHALLENGES.items()
            }
        )
        return
    width = max(len(n) for n in CHALLENGES)
    for name, c in CHALLENGES.items():
        print(f"{name:<{width}}  {c.title}: {c.target}")


def cmd_challenge(args) -> None:
    from gan2d.challenges import attempt, get_challenge

    challenge = get_challenge(args.name)
    changes = parse_sets(args.set or [])
    if args.seed is not None:
        changes["seed"] = str(args.seed)
    config = challenge.student_config(changes)
    result = attempt(challenge, config)
    emit(
        {
            "challenge": challenge.name,
            "passed": result.passed,
            "target": challenge.target,
            "got": result.got,
            "steps": result.steps,
            "seed": config.seed,
            "changes": {k: v for k, v in changes.items() if k != "seed"},
        }
    )


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gan2d", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("presets", help="list presets with one-line descriptions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("train", help="train one run and print its metrics as JSON")
    p.add_argument("--preset", choices=list(PRESETS), metavar="NAME")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--out", metavar="RUN.npz")
    p.add_argument("--config", metavar="FILE.json", help="base config (instead of a preset)")
    p.add_argument("--init", metavar="WEIGHTS.npz", help="train on from this state")
    p.add_argument("--save-config", metavar="FILE.json", help="write the config file")
    p.add_argument("--save-weights", metavar="FILE.npz", help="write the final state")
    p.add_argument("--w1", choices=["exact", "sliced"], default="exact")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="protocol metrics of saved samples or saved weights")
    p.add_argument("--samples", metavar="FILE.npy")
    p.add_argument("--dataset", choices=["ring8", "grid25"])
    p.add_argument("--config", metavar="FILE.json")
    p.add_argument("--weights", metavar="FILE.npz")
    p.add_argument("--w1", choices=["exact", "sliced"], default="exact")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("theory", help="toy games: xy, Dirac-GAN, divergences")
    p.add_argument("kind", choices=["xy", "dirac", "divergences", "klfit"])
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.set_defaults(func=cmd_theory)

    p = sub.add_parser("bench", help="training speed: scan-fused, per-step jit, vmap, torch")
    p.add_argument("--quick", action="store_true", help="about a minute: app size, vmap 16")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    p.add_argument("--size", action="append", metavar="WxDxB", help="replace the sizes")
    p.add_argument("--runs", metavar="R1,R2", help="vmapped run counts (default 16,128)")
    p.add_argument("--loss", action="append", choices=["ns", "wgan-gp"], help="replace the losses")
    p.add_argument("--seconds", type=float, help="timing window per measurement")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("sweep", help="a grid of data hyper-parameters x seeds, vmapped")
    p.add_argument("--preset", choices=list(PRESETS), metavar="NAME")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument(
        "--grid", action="append", metavar="FIELD=V1,V2,...", help="repeat for a product"
    )
    p.add_argument("--seeds", type=int, default=4, help="seeds per cell, from --seed on")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--out", metavar="SWEEP.npz")
    p.add_argument("--max-memory-mb", type=float, help="refuse sweeps needing more")
    p.add_argument("--w1", choices=["exact", "sliced"], default="exact")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("challenges", help="list the challenges and their targets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_challenges)

    p = sub.add_parser("challenge", help="try a challenge headless: passed, target, got as JSON")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_challenge)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
