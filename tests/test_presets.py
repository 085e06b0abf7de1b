"""Short real runs: each key preset shows the behaviour it is named for.

The full five-seed figures in the README come from ``benchmarks/preset_table.py``;
these runs are one seed and shorter, with margins that still tell the stories apart.
"""

import numpy as np
import pytest

from gan2d.core.evaluate import evaluate
from gan2d.core.runs import train_run
from gan2d.presets import get_preset

pytestmark = pytest.mark.slow


def median_g_grad(config, steps):
    run = train_run(config, steps)
    return float(np.median(run.history["g_grad_norm"][-50:]))


def test_vanishing_gradients_the_saturating_loss_starves_the_generator():
    preset = get_preset("vanishing-gradients").config
    saturating = median_g_grad(preset, 200)
    non_saturating = median_g_grad(preset.with_changes(loss="ns"), 200)
    assert saturating < 1e-4  # orders of magnitude below a learning generator
    assert non_saturating > 1e-1
    assert non_saturating > 1e4 * saturating


def final_modes(name, steps=None, **changes):
    preset = get_preset(name)
    config = preset.config.with_changes(**changes)
    run = train_run(config, steps or preset.steps, chunk_size=1000)
    return evaluate(config, run.state).metrics


def test_wgan_gp_covers_every_mode_of_the_ring():
    result = final_modes("wgan-gp")
    assert result["modes"] == 8


def test_vanilla_collapse_ends_on_at_most_two_modes_with_high_quality():
    result = final_modes("vanilla-collapse")
    assert result["modes"] <= 2
    assert result["hq"] > 90  # sharp samples, no diversity: collapse, not failure to learn
