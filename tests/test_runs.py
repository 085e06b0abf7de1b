"""Batches of runs: a run in a batch is the run alone, the batch spreads over every
device with the same results, and a new config means one clear thing for a running
state (same program, adopted networks, or a restart)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from gan2d.core import memory
from gan2d.core.config import Config
from gan2d.core.runs import Runs, group, run_state, train_run, transition

TINY = Config(width=8, depth=1, batch_size=32)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_a_run_in_a_batch_starts_exactly_as_it_does_alone():
    configs = [TINY.with_changes(seed=s, lr_g=lr) for s, lr in [(0, 1e-4), (3, 1e-3)]]
    stacked = Runs(configs).init()
    for i, config in enumerate(configs):
        alone = run_state(Runs([config]).init(), 0)
        for a, b in zip(leaves(run_state(stacked, i)), leaves(alone), strict=True):
            np.testing.assert_array_equal(a, b)


def test_configs_that_differ_only_in_r1_on_or_off_share_one_program():
    configs = [TINY, TINY.with_changes(r1_weight=0.1), TINY.with_changes(loss="hinge")]
    groups = group(configs)
    assert [idx for idx, _ in groups] == [[0, 1], [2]]
    runs = groups[0][1]
    assert runs.static.r1_weight == 1.0  # compiled in; run 0 has weight 0: adds exactly 0
    state, diag = runs.chunk(runs.init(), 3)
    assert np.shape(diag["d_loss"]) == (2, 3)
    with pytest.raises(ValueError, match="separate programs"):
        Runs([TINY, TINY.with_changes(loss="hinge")])


def test_train_run_is_the_batch_of_one_and_keeps_the_history():
    result = train_run(TINY, 30, chunk_size=20)
    assert result.history["g_loss"].shape == (30,)
    assert int(result.state["step"]) == 30
    assert result.steps_per_s > 0 and 0 <= result.compile_seconds <= result.seconds
    runs = Runs([TINY])
    state, _ = runs.chunk(runs.init(), 30)
    for a, b in zip(leaves(result.state), leaves(run_state(state, 0)), strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- packed states


@pytest.mark.parametrize("n_runs", [1, 3])  # a batch of one runs without vmap
def test_a_packed_state_trains_exactly_as_the_state_and_unpacks_to_it(n_runs):
    configs = [TINY.with_changes(seed=s) for s in range(n_runs)]
    runs = Runs(configs)
    state = runs.init()
    packed = runs.pack(state)
    # one buffer per dtype (weights, the step, the random key), not one per array
    assert len(packed) == 3 and len(leaves(state)) > 20
    for a, b in zip(leaves(runs.unpack(packed)), leaves(state), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    state, diag = runs.chunk(state, 5)
    packed, packed_diag = runs.packed_chunk(packed, 5)
    for a, b in zip(leaves(runs.unpack(packed)), leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
    host = runs.fetch_diag(packed_diag, 5)
    assert sorted(host) == sorted(diag)
    for name, values in jax.device_get(diag).items():
        assert host[name].shape == (n_runs, 5)
        np.testing.assert_array_equal(host[name], values)
    assert runs.is_compiled(5, packed=True) and not runs.is_compiled(7, packed=True)


def test_a_run_that_trains_packed_is_compiled_without_ever_unpacking():
    """Regression: ``is_compiled(packed=True)`` asked for ``unpack`` too, which a lab's
    run never needs: its page said "Compiling..." during every chunk, and a busy lab
    never timed its chunks (so never trained fewer steps a frame)."""
    runs = Runs([TINY.with_changes(width=12)])  # a shape no other test compiles
    packed, _ = runs.packed_chunk(runs.pack(runs.init()), 5)
    assert runs.is_compiled(5, packed=True) and not runs.has_program("unpack")


# ---------------------------------------------------------------------- transitions


def trained(config, steps=3):
    runs = Runs([config])
    state, _ = runs.chunk(runs.init(), steps)
    return runs, state


def test_a_learning_rate_change_is_new_data_for_the_same_program():
    runs, state = trained(TINY)
    change = transition(runs, state, [TINY.with_changes(lr_d=3e-3, gp_weight=2.0)])
    assert change.kind == "hparams" and change.runs.static == runs.static
    assert int(change.state["step"][0]) == 3  # the run goes on
    assert float(change.state["hp"]["lr_d"][0]) == pytest.approx(3e-3)
    for a, b in zip(leaves(change.state["g"]), leaves(state["g"]), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "changes, kind",
    [
        ({"lr_d": 3e-3, "gp_weight": 2.0, "radius": 1.5}, "hparams"),
        ({"loss": "wgan-gp", "lr_g": 5e-4}, "adopt"),
        ({"width": 16}, "restart"),
        ({"seed": 4}, "restart"),
    ],
)
@pytest.mark.parametrize("n_runs", [1, 2])
def test_a_packed_transition_is_the_transition_of_the_state(changes, kind, n_runs):
    configs = [TINY.with_changes(seed=s) for s in range(n_runs)]
    runs = Runs(configs)
    state, _ = runs.chunk(runs.init(), 3)
    new = [c.with_changes(**changes) for c in configs]
    plain = transition(runs, state, new)
    packed = transition(runs, runs.pack(state), new, packed=True)
    assert plain.kind == packed.kind == kind and plain.reason == packed.reason
    assert packed.runs.static == plain.runs.static
    got, want = packed.runs.unpack(packed.state), plain.state
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(leaves(got), leaves(want), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # and it trains on as the plain state does
    after, _ = packed.runs.packed_chunk(packed.state, 1)
    for a, b in zip(
        leaves(packed.runs.unpack(after)), leaves(plain.runs.chunk(want, 1)[0]), strict=True
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "changes",
    [{"loss": "wgan-gp"}, {"optimizer": "rmsprop"}, {"d_steps": 3}, {"r1_weight": 0.5}],
)
def test_a_static_change_with_the_same_shapes_keeps_the_networks(changes):
    runs, state = trained(TINY)
    change = transition(runs, state, [TINY.with_changes(**changes)])
    assert change.kind == "adopt" and "Kept" in change.reason
    assert change.runs.static != runs.static
    for a, b in zip(leaves(change.state["d"]), leaves(state["d"]), strict=True):
        np.testing.assert_array_equal(a, b)
    change.runs.chunk(change.state, 2)  # and it trains on


@pytest.mark.parametrize("changes", [{"width": 16}, {"depth": 2}, {"z_dim": 3}, {"pack": 2}])
def test_a_shape_change_restarts_from_the_seed(changes):
    runs, state = trained(TINY)
    change = transition(runs, state, [TINY.with_changes(**changes)])
    assert change.kind == "restart" and "changed shape" in change.reason
    assert int(change.state["step"][0]) == 0


def test_a_seed_change_or_a_reset_restarts_and_the_first_config_starts():
    runs, state = trained(TINY)
    assert transition(runs, state, [TINY.with_changes(seed=5)]).kind == "restart"
    reset = transition(runs, state, [TINY], restart=True)
    assert reset.kind == "restart" and int(reset.state["step"][0]) == 0
    first = transition(None, None, [TINY])
    assert first.kind == "restart" and first.reason == ""


# ---------------------------------------------------------------------- devices

SHARDED = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from gan2d.core.config import Config
    from gan2d.core.runs import Runs
    from gan2d.core.sweep import run_sweep

    base = Config(width=8, depth=1, batch_size=32)
    result = run_sweep(base, {"lr_d": (1e-4, 1e-3)}, [0, 1, 2], 40, chunk_size=20, w1="sliced")
    np.save(sys.argv[1], result.samples)
    runs = Runs(result.configs)
    state = runs.init()
    print(json.dumps({
        "devices": jax.local_device_count(),
        "used": len(state["step"].sharding.device_set),
        "padded": runs.padded,
        "metrics": result.run_metrics,
    }))
    """
)


def _sweep_in_process(tmp_path, devices: int) -> tuple[dict, np.ndarray]:
    out = tmp_path / f"samples{devices}.npy"
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED, str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def test_a_sweep_sharded_over_two_devices_equals_the_unsharded_sweep(tmp_path):
    one, samples_one = _sweep_in_process(tmp_path, 1)
    two, samples_two = _sweep_in_process(tmp_path, 2)
    assert (one["devices"], one["used"]) == (1, 1)
    assert (two["devices"], two["used"]) == (2, 2)  # both devices train
    assert two["padded"] == 6  # 6 runs: no padding on 2 devices
    assert samples_one.shape == samples_two.shape == (6, 2500, 2)
    # the same runs, up to float32 rounding of batched products of another shape
    np.testing.assert_allclose(samples_one, samples_two, atol=1e-5)
    for a, b in zip(one["metrics"], two["metrics"], strict=True):
        assert a["w1"] == pytest.approx(b["w1"], abs=1e-4)


def test_an_odd_batch_is_padded_to_the_devices_and_the_copies_are_dropped():
    runs = Runs([TINY.with_changes(seed=s) for s in range(3)])
    assert runs.padded == len(runs.devices) * -(-3 // len(runs.devices))
    state, diag = runs.chunk(runs.init(), 2)
    assert np.shape(diag["d_loss"])[0] == runs.padded


# ---------------------------------------------------------------------- memory


def test_too_large_a_batch_is_refused_naming_the_size_that_fits():
    plan = memory.plan_memory(TINY, runs=1, max_memory_mb=1.0)
    fit = plan.max_runs
    assert fit >= 1
    assert memory.plan_memory(TINY, fit, max_memory_mb=1.0).fits
    too_many = memory.plan_memory(TINY, fit + 1, max_memory_mb=1.0)
    assert not too_many.fits
    assert f"at most {fit} runs fit" in too_many.refusal()


@pytest.mark.parametrize(
    "config",
    [
        Config(width=32, depth=2, batch_size=64),
        Config(width=32, depth=2, batch_size=64, loss="wgan-gp", d_steps=5),
        Config(width=32, depth=2, batch_size=64, loss="minimax", unrolled_steps=3),
    ],
    ids=["ns", "wgan-gp", "unrolled"],
)
def test_memory_estimate_bounds_what_xla_allocates(config):
    """The estimate must not undershoot XLA's own figure for a batched chunk, nor be
    wildly loose (then the refusal would bite too early)."""
    n_runs = 4
    runs = Runs([config.with_changes(seed=s) for s in range(n_runs)])
    runs.prepare(10)
    compiled = runs._chunk_program(10, "both")
    stats = compiled.memory_analysis()
    xla_bytes = stats.argument_size_in_bytes + stats.output_size_in_bytes
    xla_bytes += stats.temp_size_in_bytes
    estimate = memory.plan_memory(runs.static, n_runs, max_memory_mb=1e6).total_bytes
    assert xla_bytes <= estimate <= 8 * xla_bytes
