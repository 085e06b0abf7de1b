"""The per-frame snapshot the app draws, computed on device."""

import jax
import numpy as np

from gan2d import data, metrics
from gan2d.config import Config
from gan2d.fields import Resolution, make_snapshot, to_host
from gan2d.train import make_train

RES = Resolution(samples=200, grid=20, arrows=6, manifold=5)


def snapshot(config, steps=20):
    trainer = make_train(config)
    state, _ = trainer.chunk(trainer.init(), steps)
    snap = to_host(
        make_snapshot(config, RES)(state, jax.random.PRNGKey(0), data.data_extent(config))
    )
    return state, snap


def test_snapshot_shapes_and_live_metrics_match_the_host_protocol():
    config = Config(width=32, depth=2, batch_size=64)
    state, snap = snapshot(config)
    assert snap["fake"].shape == snap["real"].shape == (200, 2)
    assert snap["critic"].shape == (20, 20)
    assert snap["arrow_xy"].shape == snap["arrow_uv"].shape == (36, 2)
    assert snap["fake_uv"].shape == (200, 2)
    assert snap["manifold"].shape == (25, 2)
    assert int(snap["step"]) == 20
    assert ((snap["critic"] >= 0) & (snap["critic"] <= 1)).all()  # D(x) is a probability
    host = metrics.mode_metrics(snap["fake"], data.mode_means(config), config.data_std)
    assert int(snap["live_modes"]) == host["modes"]
    assert float(snap["live_hq"]) == np.float32(host["hq"])


def test_push_arrows_point_uphill_on_the_critic_for_wgan():
    # the WGAN generator minimises -f(G(z)): each fake is pushed along +grad f
    config = Config(width=32, depth=2, batch_size=64, loss="wgan")
    state, snap = snapshot(config, steps=5)
    trainer = make_train(config)
    grad_f = jax.vmap(jax.grad(lambda x: trainer.programs.critic_scores(state["d"], x[None])[0]))(
        snap["fake"]
    )
    np.testing.assert_allclose(snap["fake_uv"], np.asarray(grad_f), rtol=1e-4, atol=1e-6)


def test_radius_change_moves_the_live_modes_without_recompiling():
    config = Config(width=32, depth=2, batch_size=64)
    fn = make_snapshot(config, RES)
    trainer = make_train(config)
    state = trainer.init()
    wide = trainer.with_hparams(state, config.with_changes(radius=3.0))
    to_host(fn(state, jax.random.PRNGKey(0), 5.0))
    before = fn._cache_size()
    snap = to_host(fn(wide, jax.random.PRNGKey(0), 5.0))
    assert fn._cache_size() == before
    np.testing.assert_allclose(np.linalg.norm(snap["real"], axis=1).mean(), 3.0, atol=0.02)
