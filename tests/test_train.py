"""The training step: determinism, unrolling, live hyper-parameters, every option runs.

Runs train as a batch (``Runs``); a single run is a batch of one, so these tests train
through the same compiled programs as the app and the CLI."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan2d.core import data, losses, nets
from gan2d.core.config import Config
from gan2d.core.programs import PROGRAMS
from gan2d.core.runs import Runs, run_state
from gan2d.core.train import ADAM_EPS_ROOT, DIAGNOSTICS, make_train

SMALL = Config(width=32, depth=2, batch_size=64)


class One:
    """A single run as the app and the CLI train it: a batch of one."""

    def __init__(self, config):
        self.config = config
        self.runs = Runs([config])

    def init(self):
        return self.runs.init()

    def chunk(self, state, n, mode="both"):
        state, diag = self.runs.chunk(state, n, mode)
        return state, run_state(diag, 0)


def leaves(state):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]


def net(state, name):
    """The first weight matrix of net ``name`` of a batch-of-one state."""
    return np.asarray(state[name][0]["w"])


def assert_same(a, b):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_same_seed_gives_the_identical_run_and_chunking_does_not_matter():
    trainer = One(SMALL)
    one, diag_one = trainer.chunk(trainer.init(), 40)
    half, diag_a = trainer.chunk(trainer.init(), 20)
    half, diag_b = trainer.chunk(half, 20)
    assert_same(one, half)
    np.testing.assert_array_equal(
        diag_one["g_loss"], np.concatenate([diag_a["g_loss"], diag_b["g_loss"]])
    )
    other_run = One(SMALL.with_changes(seed=1))
    other, _ = other_run.chunk(other_run.init(), 40)
    assert not np.array_equal(net(other, "g"), net(one, "g"))


def test_diagnostics_are_per_step_arrays():
    trainer = One(SMALL)
    _, diag = trainer.chunk(trainer.init(), 7)
    assert set(diag) == set(DIAGNOSTICS)
    assert all(np.shape(v) == (7,) and np.isfinite(v).all() for v in diag.values())


def reference_plain_step(config, state):
    """One alternating GAN step written out by hand from the building blocks."""
    hp, batch = state["hp"], config.batch_size
    key = jax.random.fold_in(state["key"], state["step"])
    k_d, k_g = jax.random.split(key)
    (k_d1,) = jax.random.split(k_d, 1)
    k_real, k_z, _, _, _ = jax.random.split(k_d1, 5)
    tx = optax.adam(hp["lr_d"], hp["beta1"], hp["beta2"], eps_root=ADAM_EPS_ROOT)
    sampler = data.make_sampler(config)
    g, d = state["g"], state["d"]

    def d_loss(d):
        real = sampler(k_real, batch, hp)
        fake = nets.generate(g, nets.sample_latent(k_z, batch, config), config)
        return losses.LOSSES[config.loss].critic_loss(
            nets.critic(d, real, config), nets.critic(d, fake, config), 0.0
        )

    updates, _ = tx.update(jax.grad(d_loss)(d), state["d_opt"].inner_state, d)
    d = optax.apply_updates(d, updates)
    k_z, _, _ = jax.random.split(k_g, 3)

    def g_loss(g):
        fake = nets.generate(g, nets.sample_latent(k_z, batch, config), config)
        return losses.LOSSES[config.loss].generator_loss(nets.critic(d, fake, config))

    tx_g = optax.adam(hp["lr_g"], hp["beta1"], hp["beta2"], eps_root=ADAM_EPS_ROOT)
    updates, _ = tx_g.update(jax.grad(g_loss)(g), state["g_opt"].inner_state, g)
    return optax.apply_updates(g, updates), d


def test_unrolled_k0_is_exactly_the_plain_step():
    config = SMALL.with_changes(loss="minimax", unrolled_steps=0)
    trainer = One(config)
    state = trainer.init()
    ref_g, ref_d = jax.jit(reference_plain_step, static_argnums=0)(config, run_state(state, 0))
    new, _ = trainer.chunk(state, 1)
    assert_same(run_state(new, 0)["d"], ref_d)
    assert_same(run_state(new, 0)["g"], ref_g)


def test_unrolling_changes_only_the_generator_update():
    # SGD: Adam's first step is about lr * sign(grad), which would hide the difference
    base = SMALL.with_changes(loss="minimax", optimizer="sgd", beta1=0.0, lr_g=0.1, lr_d=0.1)
    plain = One(base)
    unrolled = One(base.with_changes(unrolled_steps=3))
    after_plain, _ = plain.chunk(plain.init(), 1)
    after_unrolled, _ = unrolled.chunk(unrolled.init(), 1)
    # the critic update applied for real is the same; the look-ahead ones are discarded
    assert_same(after_plain["d"], after_unrolled["d"])
    assert not np.allclose(net(after_plain, "g"), net(after_unrolled, "g"), atol=1e-9)


def test_changing_learning_rates_and_weights_does_not_recompile():
    config = SMALL.with_changes(loss="wgan-gp")
    runs = Runs([config])
    state, _ = runs.chunk(runs.init(), 5)
    compiled = len(PROGRAMS.compile_seconds)
    faster = Runs([config.with_changes(lr_d=3e-3, lr_g=2e-3, gp_weight=1.0, beta1=0.0)])
    assert faster.static == runs.static
    state = faster.with_hparams(state)
    state, _ = faster.chunk(state, 5)
    assert len(PROGRAMS.compile_seconds) == compiled  # nothing new was compiled
    assert float(state["hp"]["lr_d"][0]) == pytest.approx(3e-3)


def test_the_learning_rate_in_the_state_is_the_one_used():
    trainer = One(SMALL)
    state = trainer.init()
    slow_lr = Runs([SMALL.with_changes(lr_g=1e-6)]).with_hparams(state)
    fast_lr = Runs([SMALL.with_changes(lr_g=1e-2)]).with_hparams(state)
    slow, _ = trainer.chunk(slow_lr, 1)
    fast, _ = trainer.chunk(fast_lr, 1)
    w0 = net(state, "g")
    move_slow = np.abs(net(slow, "g") - w0).max()
    move_fast = np.abs(net(fast, "g") - w0).max()
    assert move_fast > 1000 * move_slow > 0


def test_a_loss_change_keeps_the_networks_and_a_width_change_does_not():
    trainer = One(SMALL)
    state, _ = trainer.chunk(trainer.init(), 3)
    kept = Runs([SMALL.with_changes(loss="wgan-gp")]).adopt(state)
    assert kept is not None
    assert_same(kept["g"], state["g"])
    assert Runs([SMALL.with_changes(width=48)]).adopt(state) is None
    rmsprop = Runs([SMALL.with_changes(optimizer="rmsprop")])
    switched = rmsprop.adopt(state)
    assert_same(switched["d"], state["d"])
    rmsprop.chunk(switched, 2)


def test_single_net_steps_leave_the_other_net_alone():
    trainer = One(SMALL)
    state = trainer.init()
    d_only, _ = trainer.chunk(state, 2, mode="d")
    assert_same(d_only["g"], state["g"])
    assert not np.array_equal(net(d_only, "d"), net(state, "d"))
    g_only, _ = trainer.chunk(state, 2, mode="g")
    assert_same(g_only["d"], state["d"])
    with pytest.raises(ValueError, match="mode"):
        trainer.chunk(state, 1, mode="x")


def test_lr_decay_reaches_ten_percent():
    from gan2d.core.train import decayed

    hp = {"lr_decay_steps": jnp.float32(100)}
    assert float(decayed(1.0, hp, 0)) == pytest.approx(1.0)
    assert float(decayed(1.0, hp, 50)) == pytest.approx(0.55)
    assert float(decayed(1.0, hp, 1000)) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "changes",
    [
        {"loss": "minimax", "label_smoothing": 0.1},
        {"loss": "wgan", "optimizer": "rmsprop"},
        {"loss": "wgan-gp", "d_steps": 2, "pack": 2},
        {"loss": "lsgan", "optimizer": "sgd", "minibatch_std": True},
        {"loss": "hinge", "n_generators": 4, "prior": "uniform", "activation": "tanh"},
        {
            "loss": "ns",
            "r1_weight": 1.0,
            "instance_noise": 0.1,
            "noise_decay_steps": 10,
            "ema": 0.9,
            "z_dim": 1,
            "unrolled_steps": 2,
            "activation": "relu",
        },
    ],
)
def test_every_option_trains_and_moves_both_nets(changes):
    config = SMALL.with_changes(**changes)
    trainer = One(config)
    state = trainer.init()
    new, diag = trainer.chunk(state, 10)
    assert all(np.isfinite(v).all() for v in diag.values())
    for net in ("g", "d"):
        assert not np.array_equal(leaves(new[net])[0], leaves(state[net])[0])


def test_wgan_clipping_keeps_every_critic_weight_in_range():
    config = SMALL.with_changes(loss="wgan", clip=0.02, lr_d=1e-2)
    trainer = One(config)
    state, _ = trainer.chunk(trainer.init(), 5)
    assert max(np.abs(x).max() for x in leaves(state["d"])) <= 0.02 + 1e-7


def test_several_generators_each_make_their_share():
    config = SMALL.with_changes(n_generators=4)
    g = nets.init_generator(jax.random.PRNGKey(0), config)
    z = jnp.ones((8, config.z_dim))
    out = np.asarray(nets.generate(g, z, config))
    # the same latent through 4 different nets gives 4 different points, in turn
    assert len({tuple(np.round(p, 5)) for p in out}) == 4
    np.testing.assert_array_equal(out[:4], out[4:])


def test_programs_are_shared_by_configs_with_one_static_part():
    a = Runs([SMALL.with_changes(lr_d=1e-3, seed=3)])
    b = Runs([SMALL.with_changes(lr_d=5e-4, seed=9)])
    assert a.cache_key("chunk", 5, "both") == b.cache_key("chunk", 5, "both")
    a.prepare(5)
    assert b.is_compiled(5)  # b's programs are a's
    assert make_train(SMALL).config == SMALL.static_part()
