"""Sweeps: a grid of data hyper-parameters times several seeds, trained as one batch.

"Are GANs created equal?" (Lucic et al. 2018) asks how much of a result is the setting
and the seed. A sweep answers it: every (grid cell, seed) run trains in one ``Runs``
batch (one program, sharded over the local devices), then each is scored by
``gan2d.core.evaluate``. A run inside a sweep starts from ``PRNGKey(config.seed)`` and
runs the same step as a single run of that config, so it reproduces ``gan2d train``.

Only data fields can be swept: a static field changes shapes or code, so its values
cannot share one program. ``Sweep`` advances a chunk at a time (the app's Sweep tab
shows progress and partial results between chunks); ``run_sweep`` runs it to the end.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import jax
import numpy as np

from gan2d.core import evaluate, memory, metrics
from gan2d.core.config import DATA_FIELDS, SPECS, Config
from gan2d.core.runs import Runs, run_state
from gan2d.core.train import DIAGNOSTICS

#: fields a sweep may vary: the data hyper-parameters carried in the training state
SWEEPABLE = DATA_FIELDS
METRIC_NAMES = ("modes", "hq", "rkl", "w1")


# ------------------------------------------------------------------ grid


def parse_grid(items: Sequence[str]) -> dict[str, tuple]:
    """``["lr_d=1e-4,3e-4", "gp_weight=0.1,1"]`` -> ``{"lr_d": (1e-4, 3e-4), ...}``.

    ``ValueError`` says what went wrong."""
    grid: dict[str, tuple] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--grid expects field=v1,v2,..., got {item!r}")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; list all its values in one --grid")
        grid[key] = parse_values(key, raw, flag="--grid ")
    return grid


def parse_values(key: str, raw: str, flag: str = "") -> tuple:
    """The comma-separated values of one sweepable field, parsed and checked."""
    if key == "seed":
        raise ValueError(f"{flag}seed=...: seeds are not a grid axis; use --seeds N")
    if key not in SPECS:
        raise ValueError(f"{flag}{key}: unknown field; sweepable: {', '.join(SWEEPABLE)}")
    if key not in SWEEPABLE:
        raise ValueError(
            f"{flag}{key}: {key} is a static field (it changes shapes or code), so its "
            f"values cannot share one vmapped program; sweepable data fields: "
            f"{', '.join(SWEEPABLE)}"
        )
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values:
        raise ValueError(f"{flag}{key}: no values; write {key}=v1,v2,...")
    parsed = tuple(SPECS[key].parse(key, v) for v in values)
    if len(set(parsed)) != len(parsed):
        raise ValueError(f"{flag}{key}: repeated value in {raw!r}")
    return parsed


def grid_cells(grid: dict[str, Sequence]) -> list[dict]:
    """Cartesian product of the grid, first field slowest: one dict per cell."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def run_configs(base: Config, cells: list[dict], seeds: Sequence[int]) -> list[Config]:
    """One validated config per run, cell-major (the seeds of a cell are adjacent)."""
    return [replace(base, **cell, seed=int(seed)).validate() for cell in cells for seed in seeds]


# ------------------------------------------------------------------ results


def _mean_std(values: list) -> tuple[float | None, float | None]:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None, None
    return float(np.mean(finite)), float(np.std(finite))


def _value(run_metrics: dict, name: str) -> float:
    """A metric as a float; NaN where it does not apply (no modes) or is undefined."""
    value = run_metrics.get(name)
    return np.nan if value is None else float(value)


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
    memory: memory.MemoryPlan
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
        """(cells, seeds) array of one metric; NaN where undefined (diverged, no HQ,
        no modes in the data)."""
        values = [_value(m, name) for m in self.run_metrics]
        return np.asarray(values, dtype=np.float64).reshape(len(self.cells), len(self.seeds))

    def cell_summaries(self) -> list[dict]:
        """Per grid cell: mean and std over seeds of the metrics the data has."""
        out = []
        n_seeds = len(self.seeds)
        for i, cell in enumerate(self.cells):
            runs = self.run_metrics[i * n_seeds : (i + 1) * n_seeds]
            row = {"cell": cell, "runs": n_seeds, "seeds": list(self.seeds)}
            for name in METRIC_NAMES:
                if not any(name in r for r in runs):
                    continue  # a dataset without modes has no modes, hq or rkl
                mean, std = _mean_std([r.get(name) for r in runs])
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
            "device_peak_mb": memory.device_peak_mb(),
            "device": str(jax.devices()[0]),
            "devices": jax.local_device_count(),
        }

    def save(self, path: str) -> None:
        """npz: samples (runs, 2500, 2), per-run metrics, grid, seeds, histories."""
        np.savez_compressed(
            path,
            samples=self.samples.astype(np.float32),
            **{
                name: np.asarray([_value(m, name) for m in self.run_metrics], np.float64)
                for name in METRIC_NAMES
            },
            diverged=np.asarray([m["diverged"] for m in self.run_metrics], bool),
            seeds=np.asarray(self.seeds, np.int64),
            grid_fields=np.asarray(list(self.grid)),
            **{f"grid_{k}": np.asarray(v, np.float64) for k, v in self.grid.items()},
            run_configs=np.asarray(
                [json.dumps(c.to_dict(only_changed=True)) for c in self.configs]
            ),
            **{f"history_{k}": v.astype(np.float32) for k, v in self.history.items()},
        )


# ------------------------------------------------------------------ the sweep


class Sweep:
    """A sweep in progress: ``advance()`` trains a chunk, ``evaluate_next()`` scores a
    run, ``result()`` gathers everything. Raises ``ValueError`` on a bad grid or a
    sweep that would not fit in memory (the message names how many runs fit)."""

    def __init__(
        self,
        base: Config,
        grid: dict[str, Sequence],
        seeds: Sequence[int],
        steps: int,
        *,
        chunk_size: int = 500,
        max_memory_mb: float | None = None,
        w1: str = "exact",
    ):
        if steps < 1:
            raise ValueError(f"steps={steps} must be at least 1")
        if not seeds:
            raise ValueError("a sweep needs at least one seed")
        if w1 not in evaluate.W1_KINDS:
            raise ValueError(f"w1={w1!r}; choose one of {', '.join(evaluate.W1_KINDS)}")
        for key in grid:
            if key not in SWEEPABLE:
                raise ValueError(f"{key} is not a sweepable data field")
        self.base, self.steps, self.chunk_size, self.w1 = base, steps, chunk_size, w1
        self.grid = {k: tuple(v) for k, v in grid.items()}
        self.seeds = tuple(int(s) for s in seeds)
        self.configs = run_configs(base, grid_cells(self.grid), self.seeds)
        self.runs = Runs(self.configs)
        self.memory = memory.plan_memory(self.runs.static, self.runs.padded, max_memory_mb)
        if not self.memory.fits:
            raise ValueError(self.memory.refusal())
        self.state = None
        self.done = 0
        self.history: dict[str, list] = {k: [] for k in DIAGNOSTICS}
        self.evaluations: list[evaluate.Evaluation] = []
        self.seconds = self.compile_seconds = self.eval_seconds = 0.0

    @property
    def trained(self) -> bool:
        return self.done >= self.steps

    @property
    def evaluated(self) -> bool:
        return len(self.evaluations) == len(self.configs)

    def advance(self) -> None:
        """Train the next chunk (the first call compiles and initialises)."""
        t0 = time.perf_counter()
        n = min(self.chunk_size, self.steps - self.done)
        self.compile_seconds += self.runs.prepare(n)
        if self.state is None:
            self.state = self.runs.init()
        self.state, diag = self.runs.chunk(self.state, n)
        diag = jax.device_get(diag)
        for k in DIAGNOSTICS:
            self.history[k].append(np.asarray(diag[k])[: self.runs.size])
        self.done += n
        self.seconds += time.perf_counter() - t0

    def preview(self, n: int = 400) -> np.ndarray:
        """(runs, n, 2): points from each run's generator now (the evaluated one)."""
        host = jax.device_get({"g": self.state["g"], "g_ema": self.state["g_ema"]})
        out = []
        for i, config in enumerate(self.configs):
            g = host["g_ema"] if config.ema > 0 else host["g"]
            out.append(evaluate.generate(config, run_state(g, i), n, config.seed))
        return np.stack(out).astype(np.float32)

    def evaluate_next(self) -> None:
        """Score the next run by the protocol."""
        t0 = time.perf_counter()
        i = len(self.evaluations)
        one = jax.device_get(
            {"g": run_state(self.state["g"], i), "g_ema": run_state(self.state["g_ema"], i)}
        )
        self.evaluations.append(evaluate.evaluate(self.configs[i], one, self.w1))
        self.eval_seconds += time.perf_counter() - t0

    def result(self, stopped: bool = False) -> SweepResult:
        samples = (
            np.stack([e.samples.astype(np.float32) for e in self.evaluations])
            if self.evaluations
            else np.zeros((0, metrics.PROTOCOL_SAMPLES, 2), np.float32)
        )
        history = {
            k: np.concatenate(v, axis=1) if v else np.zeros((len(self.configs), 0), np.float32)
            for k, v in self.history.items()
        }
        return SweepResult(
            base=self.base,
            grid=self.grid,
            seeds=self.seeds,
            steps=self.steps,
            steps_done=self.done,
            configs=self.configs,
            samples=samples,
            run_metrics=[e.metrics for e in self.evaluations],
            history=history,
            seconds=self.seconds,
            compile_seconds=self.compile_seconds,
            eval_seconds=self.eval_seconds,
            memory=self.memory,
            stopped=stopped,
            w1_kind=self.w1,
        )


def run_sweep(
    base: Config,
    grid: dict[str, Sequence],
    seeds: Sequence[int],
    steps: int,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    **options,
) -> SweepResult:
    """Train every (grid cell, seed) run of ``base`` together and score each.

    ``options`` are ``Sweep``'s (``chunk_size``, ``max_memory_mb``, ``w1``: the exact or
    the sliced W1). ``on_progress(done, steps)`` is called after each chunk."""
    sweep = Sweep(base, grid, seeds, steps, **options)
    while not sweep.trained:
        sweep.advance()
        if on_progress is not None:
            on_progress(sweep.done, steps)
    jax.block_until_ready(sweep.state)
    while not sweep.evaluated:
        sweep.evaluate_next()
    return sweep.result()
