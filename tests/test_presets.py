"""Short real runs: each key preset shows the behaviour it is named for.

The full five-seed figures in the README come from ``benchmarks/preset_table.py``;
these runs are one seed and shorter, with margins that still tell the stories apart.
"""

import sys

import numpy as np
import pytest

from gan2d.core.evaluate import evaluate
from gan2d.core.runs import train_run
from gan2d.presets import get_preset, live_config
from gan2d.ui.browser import ROOT

pytestmark = pytest.mark.slow


def median_g_grad(config, steps):
    run = train_run(config, steps)
    return float(np.median(run.history["g_grad_norm"][-50:]))


@pytest.mark.parametrize("seed", [0, 5, 6, 7, 8, 9])  # tuned on 0; 5-9 it never saw
def test_vanishing_gradients_the_saturating_loss_starves_the_generator(seed):
    preset = get_preset("vanishing-gradients").config.with_changes(seed=seed)
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


def test_vanilla_collapse_sits_on_a_mode_then_moves_to_another():
    """The textbook collapse, as the lab trains it on a CPU: every fake in one clump on
    one real mode, until the critic catches up and the clump moves to another mode.
    Scored as ``benchmarks/collapse_check.py`` scores it, on one seed and fewer steps."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from collapse_check import HQ_COLLAPSED, checks, verdict

    config = live_config(get_preset("vanilla-collapse").config, backend="cpu")
    (series,) = checks(config, [0], 6000, 250)
    result = verdict(series)
    assert result["max_modes"] <= 2, series  # never spread over the ring
    assert result["hq_share_after"] > 0.5, series  # sitting on a mode
    on_a_mode = {s["top"] for s in series if s["hq"] >= HQ_COLLAPSED}
    assert len(on_a_mode) >= 2, series  # and moving on to another
