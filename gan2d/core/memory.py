"""How much device memory a batch of runs needs, and how much there is.

A sweep (or the bench) checks its plan before anything is compiled: a sweep that
would not fit is refused with the number of runs that would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax

from gan2d.core.config import Config
from gan2d.core.train import hparams_array, make_train

#: share of the free device memory a sweep may plan to use, unless told otherwise
MEMORY_FRACTION = 0.5
MIB = 2**20


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
    train = make_train(static)
    shapes = jax.eval_shape(train.init, jax.random.PRNGKey(0), hparams_array(static))
    return int(sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(shapes)))


def activation_bytes(static: Config) -> int:
    """A generous estimate of one run's live intermediates in one training step.

    A forward pass of both nets over a batch keeps ``batch * (width * depth)`` floats
    per net for the backward pass; a step holds a few of those (critic and generator
    updates, their gradients). Gradient penalties differentiate a gradient (double), and
    unrolling keeps every look-ahead critic update alive for the backward pass.
    ``tests/test_runs.py`` checks it is an upper bound of XLA's own figure.
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
    return host_available_bytes()


def host_available_bytes() -> tuple[int, str]:
    """Memory the host can still give (Linux's MemAvailable), and what it is."""
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
