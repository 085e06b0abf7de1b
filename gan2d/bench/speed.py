"""``python -m gan2d bench``: training speed of the ways one could run gan2d, measured
in one process on one device.

For each network size and loss it measures steady-state training steps per second of

- **scan-fused**: one compiled ``lax.scan`` of n steps per call, as a batch of one run
  (what the app and CLI run);
- **unbatched scan**: the same scan without the run axis, to show that a batch of one
  costs nothing measurable;
- **jit-per-step**: one jitted call per step (the usual first JAX version);
- **vmap R**: R runs with different seeds in one vmapped scan; reported as *model
  steps per second* (runs x steps / s), the throughput a sweep gets;
- **torch eager**: the same model, loss and optimiser in PyTorch eager mode on the same
  device (``gan2d.bench.torch_ref``), when torch is installed; the best of torch's default
  thread count and one thread.

Compile time is excluded from every rate and reported apart. Each measurement repeats
calls until it has run for at least ``seconds``; the chunk lengths are picked from the
previous measurement, so slow cases (wide nets, many runs on a CPU) stay short.
"""

from __future__ import annotations

import importlib
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import numpy as np

from gan2d.core.config import Config
from gan2d.core.memory import plan_memory
from gan2d.core.runs import Runs, run_state
from gan2d.core.train import make_train
from gan2d.presets import get_preset, live_config

#: (width, depth, batch). The app runs the presets at 128x3, batch 256 on a GPU and
#: shrinks them on a CPU (``gan2d.presets.live_config``); 512x3 is a wide case where
#: the CPU is compute-bound.
PRESET_SIZE = (128, 3, 256)
LARGE_SIZE = (512, 3, 256)


def _size(config: Config) -> tuple[int, int, int]:
    return (config.width, config.depth, config.batch_size)


def app_size(backend: str | None = None) -> tuple[int, int, int]:
    """The size the app trains the presets at on ``backend`` (default: this one)."""
    return _size(live_config(get_preset("ns-gan").config, backend))


APP_CPU_SIZE = app_size("cpu")


LOSS_PRESETS = {"ns": "ns-gan", "wgan-gp": "wgan-gp"}


@dataclass(frozen=True)
class BenchPlan:
    sizes: tuple[tuple[int, int, int], ...] = (APP_CPU_SIZE, PRESET_SIZE, LARGE_SIZE)
    losses: tuple[str, ...] = ("ns", "wgan-gp")
    runs: tuple[int, ...] = (16, 128)
    seconds: float = 2.0  # minimum timed window per measurement
    max_scan_steps: int = 500
    torch: bool = True
    quick: bool = False
    notes: tuple[str, ...] = field(default=())


def full_plan() -> BenchPlan:
    return BenchPlan()


def quick_plan() -> BenchPlan:
    width, depth, batch = app_size()
    return BenchPlan(
        sizes=(app_size(),),
        runs=(16,),
        seconds=0.5,
        max_scan_steps=100,
        quick=True,
        notes=(
            f"quick: the app's size on this backend only ({width}x{depth}, batch {batch}); "
            "vmap 16 only (no 128-run vmap, no 512-wide case); 0.5 s timing windows",
        ),
    )


def bench_config(loss: str, width: int, depth: int, batch: int) -> Config:
    """The preset of ``loss`` (ns-gan, wgan-gp) at the given size."""
    preset = get_preset(LOSS_PRESETS.get(loss, loss)).config
    return preset.with_changes(width=width, depth=depth, batch_size=batch)


def torch_status() -> tuple[object | None, str]:
    """(torch_ref module or None, a description for the report)."""
    try:
        torch_ref = importlib.import_module("gan2d.bench.torch_ref")
    except ImportError:
        return None, "torch not installed"
    return torch_ref, torch_ref.describe()


# ------------------------------------------------------------------ timing


def _rate(call: Callable[[int], None], steps_per_call: int, seconds: float) -> dict:
    """Steps per second of ``call(k)`` (runs k calls of ``steps_per_call`` steps and
    waits for them). Repeats with more calls until one window lasts ``seconds``."""
    calls = 1
    while True:
        t0 = time.perf_counter()
        call(calls)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            steps = calls * steps_per_call
            return {"steps_per_s": steps / elapsed, "steps": steps, "seconds": elapsed}
        grow = seconds / max(elapsed, 1e-6) * 1.2
        calls = max(calls + 1, math.ceil(calls * min(grow, 50.0)))


def _repeated_calls(advance: Callable, state) -> Callable[[int], None]:
    """``call(k)``: k calls of ``advance(state) -> (state, diag)`` carrying the state on
    from the previous call, then a wait for the device (what ``_rate`` times)."""
    box = {"state": state}

    def call(k: int) -> None:
        s = box["state"]
        for _ in range(k):
            s, _ = advance(s)
        jax.block_until_ready(s)
        box["state"] = s

    return call


def _chunk_len(seconds_per_step: float, target: float, cap: int) -> int:
    """Steps per call so one call lasts about a quarter of the timing window, rounded
    down to a power of two so that later measurements reuse compiled programs."""
    steps = min(max(target / 4 / max(seconds_per_step, 1e-9), 1.0), cap)
    return 2 ** int(math.log2(steps))


def _one_state(config: Config):
    """A fresh state of one run, without the run axis."""
    return run_state(Runs([config]).init(), 0)


def _timed_first_call(advance, state) -> tuple[object, float]:
    t0 = time.perf_counter()
    state, _ = advance(state)
    jax.block_until_ready(state)
    return state, time.perf_counter() - t0


def measure_jit_step(config: Config, seconds: float) -> dict:
    train = make_train(config)
    donate = (0,) if jax.default_backend() != "cpu" else ()
    step = jax.jit(lambda s: train.step(s, "both"), donate_argnums=donate)
    state, compile_s = _timed_first_call(step, _one_state(config))
    call = _repeated_calls(step, state)
    call(3)  # warm caches
    return {**_rate(call, 1, seconds), "compile_s": compile_s}


def measure_scan(config: Config, n: int, seconds: float) -> dict:
    """A batch of one run, as the app and the CLI train."""
    runs = Runs([config])
    t0 = time.perf_counter()
    runs.prepare(n)
    state = runs.init()
    compile_s = time.perf_counter() - t0
    state, _ = runs.chunk(state, n)
    call = _repeated_calls(lambda s: runs.chunk(s, n), state)
    return {**_rate(call, n, seconds), "compile_s": compile_s, "chunk": n}


def measure_unbatched_scan(config: Config, n: int, seconds: float) -> dict:
    """The same scan with no run axis: what a batch of one is measured against."""
    train = make_train(config)
    donate = (0,) if jax.default_backend() != "cpu" else ()
    chunk = jax.jit(lambda s: train.chunk(s, n, "both"), donate_argnums=donate)
    state, compile_s = _timed_first_call(chunk, _one_state(config))
    call = _repeated_calls(chunk, state)
    return {**_rate(call, n, seconds), "compile_s": compile_s, "chunk": n}


def measure_vmap(config: Config, runs: int, n: int, seconds: float) -> dict:
    batch = Runs([config.with_changes(seed=i) for i in range(runs)])
    t0 = time.perf_counter()
    batch.prepare(n)
    state = batch.init()
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0
    call = _repeated_calls(lambda s: batch.chunk(s, n), state)
    rate = _rate(call, n, seconds)
    return {
        "runs": runs,
        "devices": len(batch.devices),
        "model_steps_per_s": rate["steps_per_s"] * runs,
        "steps_per_s_per_run": rate["steps_per_s"],
        "steps": rate["steps"],
        "seconds": rate["seconds"],
        "compile_s": compile_s,
        "chunk": n,
    }


def measure_torch(torch_ref, config: Config, seconds: float) -> dict:
    """PyTorch eager steps per second: the best of torch's default thread count and a
    single thread. On a busy CPU, torch's worker threads wait on each other and a
    single thread can be many times faster; the best of both is the fair reference."""
    import torch

    default_threads = torch.get_num_threads()
    by_threads = {}
    try:
        for threads in dict.fromkeys([default_threads, 1]):
            torch.set_num_threads(threads)
            gan = torch_ref.TorchGAN(config, torch_ref.device_for(jax.devices()[0].platform))
            for _ in range(3):  # warm up allocator and kernels
                gan.step()
            gan.synchronize()

            def call(k, gan=gan):
                for _ in range(k):
                    gan.step()
                gan.synchronize()

            by_threads[threads] = _rate(call, 1, seconds)
    finally:
        torch.set_num_threads(default_threads)
    best = max(by_threads, key=lambda t: by_threads[t]["steps_per_s"])
    return {
        **by_threads[best],
        "threads": best,
        "steps_per_s_by_threads": {str(t): r["steps_per_s"] for t, r in by_threads.items()},
        "device": str(gan.device),
    }


# ------------------------------------------------------------------ the whole bench


def machine() -> dict:
    device = jax.devices()[0]
    return {
        "device": str(device),
        "device_kind": getattr(device, "device_kind", device.platform),
        "platform": device.platform,
        "jax_version": jax.__version__,
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def run_bench(plan: BenchPlan, log: Callable[[str], None] | None = None) -> dict:
    """Run every measurement of ``plan``; one dict for ``--json``."""
    start = time.perf_counter()
    torch_ref, torch_desc = torch_status() if plan.torch else (None, "torch skipped")
    notes = list(plan.notes)
    load_before = os.getloadavg()
    results = []
    for width, depth, batch in plan.sizes:
        for loss in plan.losses:
            config = bench_config(loss, width, depth, batch)
            name = f"{loss} {width}x{depth} batch {batch}"
            if log:
                log(f"measuring {name} ...")
            row: dict = {
                "loss": loss,
                "width": width,
                "depth": depth,
                "batch": batch,
                "d_steps": config.d_steps,
            }
            row["jit_step"] = measure_jit_step(config, plan.seconds)
            per_step = 1.0 / row["jit_step"]["steps_per_s"]
            n = _chunk_len(per_step, plan.seconds, plan.max_scan_steps)
            row["scan"] = measure_scan(config, n, plan.seconds)
            row["unbatched_scan"] = measure_unbatched_scan(config, n, plan.seconds)
            per_step = 1.0 / row["scan"]["steps_per_s"]
            row["vmap"] = {}
            for runs in plan.runs:
                memory = plan_memory(config, runs)
                if not memory.fits:
                    notes.append(f"{name}: vmap {runs} skipped: {memory.refusal()}")
                    continue
                # on a CPU, R runs cost about R times one run; a GPU is only faster
                n_v = _chunk_len(per_step * runs, plan.seconds, plan.max_scan_steps)
                row["vmap"][str(runs)] = measure_vmap(config, runs, n_v, plan.seconds)
            row["torch_eager"] = None
            if torch_ref is not None:
                row["torch_eager"] = measure_torch(torch_ref, config, plan.seconds)
            row["ratios"] = _ratios(row)
            results.append(row)
    return {
        **machine(),
        "torch": torch_desc,
        "quick": plan.quick,
        "timing_window_s": plan.seconds,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "notes": notes,
        "results": results,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _ratios(row: dict) -> dict:
    scan = row["scan"]["steps_per_s"]
    out = {
        "scan_vs_jit_step": scan / row["jit_step"]["steps_per_s"],
        "scan_vs_unbatched": scan / row["unbatched_scan"]["steps_per_s"],
    }
    if row["torch_eager"] is not None:
        out["scan_vs_torch_eager"] = scan / row["torch_eager"]["steps_per_s"]
    for runs, v in row["vmap"].items():
        out[f"vmap{runs}_vs_scan"] = v["model_steps_per_s"] / scan
    return out


# ------------------------------------------------------------------ report


def format_table(report: dict) -> str:
    """A markdown table of steps per second and the ratios."""
    runs = sorted({int(r) for row in report["results"] for r in row["vmap"]})
    head = ["size", "loss", "scan-fused", "jit per step"]
    head += [f"vmap {r} (model steps/s)" for r in runs]
    head += ["torch eager (best threads)", "scan / jit-step", "scan / torch"]
    head += ["batch of 1 / unbatched"]
    head += [f"vmap {r} / scan" for r in runs]
    lines = [
        f"gan2d bench: {report['device']} ({report['device_kind']}), jax "
        f"{report['jax_version']}, {report['cpu_count']} CPUs, {report['torch']}; "
        f"load average {report['load_avg_before'][0]:.2f} before, "
        f"{report['load_avg_after'][0]:.2f} after; {report['seconds']:.0f} s in all",
        "steps per second, compile time excluded; higher is better",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for row in report["results"]:
        ratios = row["ratios"]
        cells = [
            f"{row['width']}x{row['depth']}, batch {row['batch']}",
            row["loss"] + (f" ({row['d_steps']} critic steps)" if row["d_steps"] > 1 else ""),
            _num(row["scan"]["steps_per_s"]),
            _num(row["jit_step"]["steps_per_s"]),
        ]
        cells += [_num(row["vmap"].get(str(r), {}).get("model_steps_per_s")) for r in runs]
        torch_cell = "-"
        if row["torch_eager"]:
            torch_cell = _num(row["torch_eager"]["steps_per_s"])
            threads = row["torch_eager"].get("threads")
            torch_cell += f" ({threads} thr)" if threads else ""
        cells += [
            torch_cell,
            _ratio(ratios.get("scan_vs_jit_step")),
            _ratio(ratios.get("scan_vs_torch_eager")),
            _ratio(ratios.get("scan_vs_unbatched")),
        ]
        cells += [_ratio(ratios.get(f"vmap{r}_vs_scan")) for r in runs]
        lines.append("| " + " | ".join(cells) + " |")
    for note in report["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _num(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(value) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.2f}x"
