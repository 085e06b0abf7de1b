"""The protocol score of a trained run: the one ``evaluate`` behind every number.

``gan2d train``, ``gan2d sweep``, the preset table and the Sweep tab all score a run
here, with the same generator (the EMA one when ``ema > 0``), the same sample seeds
(named once, below) and the metrics of ``gan2d.core.metrics``. A run whose samples are
not finite is reported as diverged.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from gan2d.core import data, metrics, nets
from gan2d.core.config import Config
from gan2d.core.programs import PROGRAMS
from gan2d.core.train import make_train

#: generated samples are drawn from PRNGKey(seed + SAMPLE_SEED_OFFSET), real ones from
#: seed + REAL_SEED_OFFSET, the sliced W1's directions from seed + SLICED_SEED_OFFSET
SAMPLE_SEED_OFFSET = 10_000
REAL_SEED_OFFSET = 20_000
SLICED_SEED_OFFSET = 30_000
W1_KINDS = ("exact", "sliced")


class Evaluation(NamedTuple):
    samples: np.ndarray  # (n, 2) generated
    real: np.ndarray  # (n, 2) real, for the W1
    metrics: dict  # modes, hq, rkl (where the data has modes), w1, diverged


def protocol_real(config: Config, n: int = metrics.PROTOCOL_SAMPLES) -> np.ndarray:
    """The real sample a run of ``config`` is scored against."""
    return data.sample_numpy(config, n, config.seed + REAL_SEED_OFFSET)


def generate(config: Config, g_params, n: int, seed: int) -> np.ndarray:
    """``n`` points from generator parameters ``g_params`` of one run of ``config``."""
    static = config.static_part()

    def build():
        return jax.jit(make_train(static).generate)

    program = PROGRAMS.get((static, "generate"), build)
    z = nets.sample_latent(jax.random.PRNGKey(seed), n, static)
    return np.asarray(program(g_params, z), dtype=np.float64)


def evaluate(
    config: Config, state, w1: str = "exact", n: int = metrics.PROTOCOL_SAMPLES
) -> Evaluation:
    """Score one run's state (a dict with ``g`` and ``g_ema``) by the protocol.

    ``w1="sliced"`` replaces the exact W1 (an assignment problem on 2,500 points: from
    about 1 s to over 10 s per run on a small CPU, slowest for collapsed generators) by
    the sliced W1 over 64 random directions, reported as ``w1`` too."""
    if w1 not in W1_KINDS:
        raise ValueError(f"w1={w1!r}; choose one of {', '.join(W1_KINDS)}")
    g_eval = state["g_ema"] if config.ema > 0 else state["g"]
    samples = generate(config, g_eval, n, config.seed + SAMPLE_SEED_OFFSET)
    real = protocol_real(config, n)
    if not np.isfinite(samples).all():
        result = {"diverged": True, "modes": 0, "hq": 0.0, "rkl": None, "w1": None}
        if data.mode_means(config) is None:
            result = {"diverged": True, "w1": None}
        return Evaluation(samples, real, result)
    distance = None  # exact
    if w1 == "sliced":
        key = jax.random.PRNGKey(config.seed + SLICED_SEED_OFFSET)
        distance = float(metrics.sliced_w1_jax(key, samples, real))
    scores = metrics.evaluate(samples, real, data.mode_means(config), config.data_std, distance)
    scores.pop("mode_counts", None)
    result = {"diverged": False, **scores}
    return Evaluation(samples, real, result)
