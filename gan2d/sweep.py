"""Many runs at once: hyper-parameter sweeps and lockstep groups, trained with ``vmap``.

Runs whose configs share a static part (same shapes and code, see ``Config.static_key``)
differ only in *data*: their hyper-parameters and PRNG keys. They train as one XLA
program, ``jit(vmap(chunk))`` over a leading run axis. That serves two views:

- **sweeps** ("are GANs created equal?", Lucic et al. 2018): a grid of data
  hyper-parameters times several seeds, evaluated with the protocol metrics;
- **compare**: two to four configs stepped in lockstep; configs with different static
  parts go to separate programs (``Lockstep`` groups them).

A run inside a sweep starts from ``PRNGKey(config.seed)`` and runs the same step
function as ``make_train(config)``, so it reproduces the single run of that config.

The R1 penalty and instance noise are compiled in only when on (``static_key`` carries
two flags). A sweep over ``r1_weight`` or ``instance_noise`` that includes 0 compiles
them in for every run; with weight 0 they add exactly zero.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

import jax
import jax.numpy as jnp
import numpy as np

from gan2d import data, metrics
from gan2d import fields as snapshot_fields
from gan2d.config import Config, parse_value
from gan2d.train import (
    DIAGNOSTICS,
    canonical,
    evaluate_state,
    hparams_array,
    programs_for,
    sample_generator,
)

#: fields a sweep may vary: the data hyper-parameters carried in the training state
SWEEPABLE = tuple(Config().hparams())
#: share of the free device memory a sweep may plan to use, unless told otherwise
MEMORY_FRACTION = 0.5
MIB = 2**20


# ------------------------------------------------------------------ grid


def parse_grid(items: Sequence[str]) -> dict[str, tuple]:
    """``["lr_d=1e-4,3e-4", "gp_weight=0.1,1"]`` -> ``{"lr_d": (1e-4, 3e-4), ...}``.

    Only data fields may be swept: a static field changes shapes or code, so its
    values cannot share one vmapped program. ``ValueError`` says what went wrong.
    """
    types = {f.name: f.type for f in fields(Config)}
    grid: dict[str, tuple] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--grid expects field=v1,v2,..., got {item!r}")
        if key == "seed":
            raise ValueError("--grid seed=...: seeds are not a grid axis; use --seeds N")
        if key not in types:
            raise ValueError(f"--grid {key}: unknown field; sweepable: {', '.join(SWEEPABLE)}")
        if key not in SWEEPABLE:
            raise ValueError(
                f"--grid {key}: {key} is a static field (it changes shapes or code), so its "
                f"values cannot share one vmapped program; sweepable data fields: "
                f"{', '.join(SWEEPABLE)}"
            )
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; list all its values in one --grid")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not values:
            raise ValueError(f"--grid {key}: no values; write {key}=v1,v2,...")
        parsed = tuple(parse_value(key, types[key], v) for v in values)
        if len(set(parsed)) != len(parsed):
            raise ValueError(f"--grid {key}: repeated value in {raw!r}")
        grid[key] = parsed
    return grid


def grid_cells(grid: dict[str, Sequence]) -> list[dict]:
    """Cartesian product of the grid, first field slowest: one dict per cell."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def run_configs(base: Config, cells: list[dict], seeds: Sequence[int]) -> list[Config]:
    """One validated config per run, cell-major (the seeds of a cell are adjacent)."""
    return [replace(base, **cell, seed=int(seed)).validate() for cell in cells for seed in seeds]


# ------------------------------------------------------------------ one vmapped program


def program_config(configs: Sequence[Config]) -> Config:
    """The canonical static config that can run every config in ``configs``.

    Raises ``ValueError`` if their static parts differ beyond the R1 / instance-noise
    on/off flags (those are compiled in when any run needs them).
    """
    first = canonical(configs[0])
    merged = replace(
        first,
        r1_weight=1.0 if any(c.r1_weight > 0 for c in configs) else 0.0,
        instance_noise=1.0 if any(c.instance_noise > 0 for c in configs) else 0.0,
    )
    for c in configs[1:]:
        if replace(canonical(c), r1_weight=0.0, instance_noise=0.0) != replace(
            merged, r1_weight=0.0, instance_noise=0.0
        ):
            raise ValueError("these configs differ in static fields; they need separate programs")
    return merged


def group_key(config: Config) -> Config:
    """Configs with equal group keys can share one vmapped program."""
    return replace(canonical(config), r1_weight=0.0, instance_noise=0.0)


def stack(trees: Sequence) -> dict:
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree, i: int):
    """The ``i``-th run of a stacked pytree."""
    return jax.tree_util.tree_map(lambda a: a[i], tree)


@functools.lru_cache(maxsize=64)
def _vmapped_chunk(programs, n: int, mode: str):
    return jax.jit(jax.vmap(lambda s: programs.chunk_impl(s, n, mode)))


@functools.lru_cache(maxsize=16)
def compiled_chunk(programs, n: int, runs: int):
    """Ahead-of-time compiled vmapped chunk for ``runs`` runs (so compile time can be
    measured apart from running time, and reused by later sweeps of the same shape)."""
    shapes = jax.eval_shape(
        jax.vmap(programs.init),
        jax.ShapeDtypeStruct((runs, 2), jnp.uint32),
        jax.tree_util.tree_map(
            lambda _: jax.ShapeDtypeStruct((runs,), jnp.float32), Config().hparams()
        ),
    )
    return _vmapped_chunk(programs, n, "both").lower(shapes).compile()


@functools.lru_cache(maxsize=32)
def _vmapped_init(programs):
    return jax.jit(jax.vmap(programs.init))


@dataclass
class VmappedRuns:
    """Configs that share one static program, trained together along a run axis."""

    configs: list[Config]
    static: Config = field(init=False)

    def __post_init__(self):
        if not self.configs:
            raise ValueError("no runs")
        self.configs = [c.validate() for c in self.configs]
        self.static = program_config(self.configs)
        self.programs = programs_for(self.static)

    @property
    def runs(self) -> int:
        return len(self.configs)

    def keys(self):
        return jnp.stack([jax.random.PRNGKey(c.seed) for c in self.configs])

    def hparams(self) -> dict:
        return stack([hparams_array(c) for c in self.configs])

    def init(self) -> dict:
        """Stacked fresh states; run i equals ``make_train(configs[i]).init()``."""
        return _vmapped_init(self.programs)(self.keys(), self.hparams())

    def chunk_fn(self, n: int, mode: str = "both"):
        """The jitted vmapped chunk of ``n`` steps (compiled on first call)."""
        return _vmapped_chunk(self.programs, int(n), mode)

    def chunk(self, state, n: int, mode: str = "both"):
        """Run ``n`` steps of every run: (state, diagnostics of shape (runs, n))."""
        return self.chunk_fn(n, mode)(state)

    def with_hparams(self, state, configs: Sequence[Config]) -> dict:
        """The same runs with new data hyper-parameters (no recompile)."""
        return {**state, "hp": stack([hparams_array(c) for c in configs])}


# ------------------------------------------------------------------ memory


@dataclass(frozen=True)
class MemoryPlan:
    """Device memory a group of runs needs, and what is allowed."""

    runs: int
    state_bytes: int  # one run's training state
    activation_bytes: int  # one run's live intermediates during a step (estimate)
    limit_bytes: int
    limit_source: str

    @property
    def bytes_per_run(self) -> int:
        # input and output states both live during a call (no donation on CPU)
        return 2 * self.state_bytes + self.activation_bytes

    @property
    def total_bytes(self) -> int:
        return self.runs * self.bytes_per_run

    @property
    def max_runs(self) -> int:
        return max(self.limit_bytes // self.bytes_per_run, 0)

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.limit_bytes

    def as_dict(self) -> dict:
        return {
            "memory_estimate_mb": round(self.total_bytes / MIB, 1),
            "memory_per_run_mb": round(self.bytes_per_run / MIB, 3),
            "memory_limit_mb": round(self.limit_bytes / MIB, 1),
            "memory_limit_source": self.limit_source,
            "max_runs": self.max_runs,
        }

    def refusal(self) -> str:
        return (
            f"sweep too large: {self.runs} runs need about {self.total_bytes / MIB:.0f} MiB "
            f"of device memory ({self.bytes_per_run / MIB:.2f} MiB per run), over the "
            f"{self.limit_bytes / MIB:.0f} MiB limit ({self.limit_source}); at most "
            f"{self.max_runs} runs fit: use fewer grid values or seeds, or raise --max-memory-mb"
        )


def state_bytes(static: Config) -> int:
    """Bytes of one run's training state, from its shapes (nothing is allocated)."""
    programs = programs_for(canonical(static))
    shapes = jax.eval_shape(programs.init, jax.random.PRNGKey(0), hparams_array(static))
    return int(sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(shapes)))


def activation_bytes(static: Config) -> int:
    """A generous estimate of one run's live intermediates in one training step.

    A forward pass of both nets over a batch keeps ``batch * (width * depth)`` floats
    per net for the backward pass; a step holds a few of those (critic and generator
    updates, their gradients). Gradient penalties differentiate a gradient (double), and
    unrolling keeps every look-ahead critic update alive for the backward pass.
    ``tests/test_sweep.py`` checks it is an upper bound of XLA's own figure.
    """
    per_pass = static.batch_size * (static.width * static.depth + static.z_dim + 4) * 4
    penalty = 2 if (static.loss == "wgan-gp" or static.r1_weight > 0) else 1
    passes = 8 * penalty * (1 + static.unrolled_steps) + 8
    return per_pass * passes


def available_bytes() -> tuple[int, str]:
    """Free memory of the default device and where the number comes from."""
    device = jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except (AttributeError, RuntimeError):  # NotImplemented is a RuntimeError
        stats = None
    if stats and "bytes_limit" in stats:
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return free, f"{device.platform} memory free"
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "host memory available"
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "host memory total"


def plan_memory(static: Config, runs: int, max_memory_mb: float | None = None) -> MemoryPlan:
    """Estimate what ``runs`` runs of ``static`` need; the limit is ``max_memory_mb`` if
    given, else ``MEMORY_FRACTION`` of the device's free memory."""
    if max_memory_mb is not None:
        limit, source = int(max_memory_mb * MIB), "--max-memory-mb"
    else:
        free, what = available_bytes()
        limit = int(free * MEMORY_FRACTION)
        source = f"{MEMORY_FRACTION:.0%} of {free / MIB:.0f} MiB {what}"
    return MemoryPlan(runs, state_bytes(static), activation_bytes(static), limit, source)


def device_peak_mb() -> float | None:
    """Peak device memory in use so far (GPU); None where jax does not report it."""
    try:
        stats = jax.devices()[0].memory_stats()
    except (AttributeError, RuntimeError):  # NotImplemented is a RuntimeError
        return None
    if not stats or "peak_bytes_in_use" not in stats:
        return None
    return round(stats["peak_bytes_in_use"] / MIB, 1)


# ------------------------------------------------------------------ evaluation


W1_KINDS = ("exact", "sliced")


def evaluate_run(config: Config, g_params, g_ema, w1: str = "exact") -> tuple[np.ndarray, dict]:
    """Protocol samples and metrics of one trained run, exactly as ``gan2d train``
    reports them (EMA generator when ``config.ema > 0``, the same sample seeds).

    ``w1="sliced"`` replaces the exact W1 (an assignment problem on 2,500 points: from
    about 1 s to over 10 s per run on a small CPU, slowest for collapsed generators)
    by the sliced W1 over 64 random directions, reported as ``w1`` too.
    """
    if w1 not in W1_KINDS:
        raise ValueError(f"w1={w1!r}; choose one of {', '.join(W1_KINDS)}")
    if w1 == "exact":
        result = evaluate_state(config, {"g": g_params, "g_ema": g_ema})
        result.pop("real")
        return result.pop("samples"), result
    g_eval = g_ema if config.ema > 0 else g_params
    samples = sample_generator(config, g_eval, metrics.PROTOCOL_SAMPLES, config.seed + 10_000)
    if not np.isfinite(samples).all():
        return samples, {"diverged": True, "modes": 0, "hq": 0.0, "rkl": None, "w1": None}
    real = data.sample_numpy(config, metrics.PROTOCOL_SAMPLES, config.seed + 20_000)
    key = jax.random.PRNGKey(config.seed + 30_000)
    result = {"diverged": False, "w1": float(metrics.sliced_w1_jax(key, samples, real))}
    means = data.mode_means(config)
    if means is not None:
        result.update(metrics.mode_metrics(samples, means, config.data_std))
        result.pop("mode_counts")
    return samples, result


def _mean_std(values: list) -> tuple[float | None, float | None]:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None, None
    return float(np.mean(finite)), float(np.std(finite))


# ------------------------------------------------------------------ sweeps


@dataclass
class SweepResult:
    base: Config
    grid: dict[str, tuple]
    seeds: tuple[int, ...]
    steps: int
    steps_done: int
    configs: list[Config]
    samples: np.ndarray  # (runs, 2500, 2) float32; empty when stopped early
    run_metrics: list[dict]  # one per run; empty when stopped early
    history: dict[str, np.ndarray]  # (runs, steps_done) per diagnostic
    seconds: float  # training, compile included
    compile_seconds: float
    eval_seconds: float
    memory: MemoryPlan
    stopped: bool = False
    w1_kind: str = "exact"

    @property
    def runs(self) -> int:
        return len(self.configs)

    @property
    def cells(self) -> list[dict]:
        return grid_cells(self.grid)

    @property
    def model_steps_per_s(self) -> float:
        run_time = max(self.seconds - self.compile_seconds, 1e-9)
        return self.runs * self.steps_done / run_time

    def cell_metrics(self, name: str) -> np.ndarray:
        """(cells, seeds) array of one metric; NaN where undefined (diverged, no HQ)."""
        values = [np.nan if m[name] is None else float(m[name]) for m in self.run_metrics]
        return np.asarray(values, dtype=np.float64).reshape(len(self.cells), len(self.seeds))

    def cell_summaries(self) -> list[dict]:
        """Per grid cell: mean and std over seeds of modes, hq, rkl, w1."""
        out = []
        n_seeds = len(self.seeds)
        for i, cell in enumerate(self.cells):
            runs = self.run_metrics[i * n_seeds : (i + 1) * n_seeds]
            row = {"cell": cell, "runs": n_seeds, "seeds": list(self.seeds)}
            for name in ("modes", "hq", "rkl", "w1"):
                mean, std = _mean_std([r[name] for r in runs])
                row[f"{name}_mean"] = None if mean is None else round(mean, 4)
                row[f"{name}_std"] = None if std is None else round(std, 4)
            row["diverged"] = sum(bool(r["diverged"]) for r in runs)
            out.append(row)
        return out

    def totals(self) -> dict:
        return {
            "runs": self.runs,
            "cells": len(self.cells),
            "seeds": len(self.seeds),
            "steps": self.steps_done,
            "seconds": round(self.seconds + self.eval_seconds, 3),
            "train_seconds": round(self.seconds, 3),
            "compile_seconds": round(self.compile_seconds, 3),
            "eval_seconds": round(self.eval_seconds, 3),
            "model_steps_per_s": round(self.model_steps_per_s, 1),
            "w1_kind": self.w1_kind,
            **self.memory.as_dict(),
            "device_peak_mb": device_peak_mb(),
            "device": str(jax.devices()[0]),
        }

    def save(self, path: str) -> None:
        """npz: samples (runs, 2500, 2), per-run metrics, grid, seeds, histories."""
        names = ("modes", "hq", "rkl", "w1")
        np.savez_compressed(
            path,
            samples=self.samples.astype(np.float32),
            **{
                name: np.asarray(
                    [np.nan if m[name] is None else m[name] for m in self.run_metrics], np.float64
                )
                for name in names
            },
            diverged=np.asarray([m["diverged"] for m in self.run_metrics], bool),
            seeds=np.asarray(self.seeds, np.int64),
            grid_fields=np.asarray(list(self.grid)),
            **{f"grid_{k}": np.asarray(v, np.float64) for k, v in self.grid.items()},
            run_configs=np.asarray([_json_config(c) for c in self.configs]),
            **{f"history_{k}": v.astype(np.float32) for k, v in self.history.items()},
        )


def _json_config(config: Config) -> str:
    import json

    return json.dumps(config.to_dict(only_changed=True))


def run_sweep(
    base: Config,
    grid: dict[str, Sequence],
    seeds: Sequence[int],
    steps: int,
    *,
    chunk_size: int = 500,
    max_memory_mb: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_eval: Callable[[int, int], None] | None = None,
    w1: str = "exact",
) -> SweepResult:
    """Train every (grid cell, seed) run of ``base`` together and evaluate each.

    Raises ``ValueError`` on a bad grid or a sweep that would not fit in memory (the
    message names how many runs fit). ``on_progress(done, steps)`` is called after
    each chunk and ``should_stop()`` before it; a stopped sweep is returned unevaluated.
    ``w1`` picks the exact or the sliced W1 (see ``evaluate_run``).
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be at least 1")
    if not seeds:
        raise ValueError("a sweep needs at least one seed")
    if w1 not in W1_KINDS:
        raise ValueError(f"w1={w1!r}; choose one of {', '.join(W1_KINDS)}")
    grid = {k: tuple(v) for k, v in grid.items()}
    for key in grid:
        if key not in SWEEPABLE:
            raise ValueError(f"{key} is not a sweepable data field")
    seeds = tuple(int(s) for s in seeds)
    configs = run_configs(base, grid_cells(grid), seeds)
    group = VmappedRuns(configs)
    memory = plan_memory(group.static, group.runs, max_memory_mb)
    if not memory.fits:
        raise ValueError(memory.refusal())

    start = time.perf_counter()
    state = group.init()
    jax.block_until_ready(state)
    compile_seconds = time.perf_counter() - start
    history = {k: [] for k in DIAGNOSTICS}
    done, stopped = 0, False
    while done < steps:
        if should_stop is not None and should_stop():
            stopped = True
            break
        n = min(chunk_size, steps - done)
        t0 = time.perf_counter()
        fn = compiled_chunk(group.programs, n, group.runs)
        compile_seconds += time.perf_counter() - t0
        state, diag = fn(state)
        diag = jax.device_get(diag)
        for k in DIAGNOSTICS:
            history[k].append(np.asarray(diag[k]))
        done += n
        if on_progress is not None:
            on_progress(done, steps)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start
    hist = {
        k: np.concatenate(v, axis=1) if v else np.zeros((group.runs, 0), np.float32)
        for k, v in history.items()
    }

    t0 = time.perf_counter()
    samples, run_metrics = [], []
    if not stopped:
        host = jax.device_get({"g": state["g"], "g_ema": state["g_ema"]})
        for i, config in enumerate(configs):
            pts, result = evaluate_run(config, unstack(host["g"], i), unstack(host["g_ema"], i), w1)
            samples.append(pts.astype(np.float32))
            run_metrics.append(result)
            if on_eval is not None:
                on_eval(i + 1, len(configs))
    samples = np.stack(samples) if samples else np.zeros((0, metrics.PROTOCOL_SAMPLES, 2))
    return SweepResult(
        base=base,
        grid=grid,
        seeds=seeds,
        steps=steps,
        steps_done=done,
        configs=configs,
        samples=samples,
        run_metrics=run_metrics,
        history=hist,
        seconds=seconds,
        compile_seconds=compile_seconds,
        eval_seconds=time.perf_counter() - t0,
        memory=memory,
        stopped=stopped,
        w1_kind=w1,
    )


# ------------------------------------------------------------------ lockstep (compare)


class Lockstep:
    """Several configs stepped together from their own seeds.

    Configs that can share a program (same ``group_key``) are vmapped together; the
    others get their own program. ``chunk(n)`` advances every run by ``n`` steps.
    Run order is the order of ``configs``.
    """

    def __init__(self, configs: Sequence[Config]):
        self.configs = [c.validate() for c in configs]
        by_key: dict[Config, list[int]] = {}
        for i, c in enumerate(self.configs):
            by_key.setdefault(group_key(c), []).append(i)
        self.members = list(by_key.values())
        self.groups = [VmappedRuns([self.configs[i] for i in idx]) for idx in self.members]
        self.states: list[dict] | None = None

    @property
    def programs(self) -> int:
        """Number of separate XLA programs (1 when every config shares shapes)."""
        return len(self.groups)

    def reset(self) -> None:
        self.states = [g.init() for g in self.groups]

    def chunk(self, n: int) -> list[dict]:
        """Advance every run ``n`` steps; per-run diagnostics (numpy, length n)."""
        if self.states is None:
            self.reset()
        per_run: list[dict | None] = [None] * len(self.configs)
        for gi, group in enumerate(self.groups):
            self.states[gi], diag = group.chunk(self.states[gi], n)
            diag = jax.device_get(diag)
            for j, run in enumerate(self.members[gi]):
                per_run[run] = {k: np.asarray(v[j]) for k, v in diag.items()}
        return per_run

    def step_count(self) -> int:
        if self.states is None:
            return 0
        return int(self.states[0]["step"][0])

    def snapshots(self, snapshot_fns: Sequence, key, extent: float) -> list[dict]:
        """Host snapshots per run. ``snapshot_fns[g]`` is the vmapped snapshot of group
        g (see ``vmapped_snapshot``); one device call per group, one transfer each."""
        if self.states is None:
            self.reset()
        out: list[dict | None] = [None] * len(self.configs)
        for gi, fn in enumerate(snapshot_fns):
            snap = jax.device_get(fn(self.states[gi], key, jnp.float32(extent)))
            for j, run in enumerate(self.members[gi]):
                out[run] = snapshot_fields.add_host_metrics(
                    {k: np.asarray(v[j]) for k, v in snap.items()}
                )
        return out


@functools.lru_cache(maxsize=32)
def vmapped_snapshot(snapshot_fn):
    """``jit(vmap(snapshot))`` over the run axis of a stacked state (shared key, extent)."""
    return jax.jit(jax.vmap(snapshot_fn, in_axes=(0, None, None)))
