"""Short real runs: each key preset shows the behaviour it is named for.

The full five-seed figures in the README come from ``benchmarks/preset_table.py``;
these runs are one seed and shorter, with margins that still tell the stories apart.
"""

import numpy as np
import pytest

from gan2d.core import data, metrics
from gan2d.core.evaluate import SAMPLE_SEED_OFFSET, evaluate, generate
from gan2d.core.runs import Runs, run_state, train_run
from gan2d.presets import get_preset, live_config

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
    (``benchmarks/collapse_check.py`` scores the same on more seeds and steps.)"""
    config = live_config(get_preset("vanilla-collapse").config, backend="cpu")
    runs = Runs([config])
    state = runs.init()
    means = data.mode_means(config)
    checks = []
    for _ in range(24):  # 6,000 steps
        state, _ = runs.chunk(state, 250)
        fake = generate(config, run_state(state, 0)["g"], 2500, SAMPLE_SEED_OFFSET)
        m = metrics.mode_metrics(fake, means, config.data_std)
        checks.append((m["modes"], m["hq"], int(np.argmax(m["mode_counts"]))))
    assert max(modes for modes, _, _ in checks) <= 2, checks  # never spread over the ring
    first = next(i for i, (modes, hq, _) in enumerate(checks) if hq >= 80 and modes >= 1)
    after = checks[first:]
    assert np.mean([hq >= 80 for _, hq, _ in after]) > 0.5, checks  # sitting on a mode
    on_a_mode = {top for modes, hq, top in after if hq >= 80}
    assert len(on_a_mode) >= 2, checks  # and moving on to another
