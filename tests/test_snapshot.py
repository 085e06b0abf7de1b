"""The per-frame snapshot the app draws, computed on device for a batch of runs."""

import jax
import numpy as np

from gan2d.core import data, metrics, snapshot
from gan2d.core.config import Config
from gan2d.core.runs import Runs
from gan2d.core.train import make_train

RES = snapshot.Resolution(samples=200, grid=20, arrows=6, manifold=5)


def snap_of(config, steps=20):
    runs = Runs([config])
    state, _ = runs.chunk(runs.init(), steps)
    (snap,) = snapshot.take(runs, state, jax.random.PRNGKey(0), data.data_extent(config), RES)
    return runs, state, snap


def test_snapshot_shapes_and_live_metrics_match_the_host_protocol():
    config = Config(width=32, depth=2, batch_size=64)
    _, _, snap = snap_of(config)
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
    assert snap["sliced_w1"] > 0


def test_push_arrows_point_uphill_on_the_critic_for_wgan():
    # the WGAN generator minimises -f(G(z)): each fake is pushed along +grad f
    config = Config(width=32, depth=2, batch_size=64, loss="wgan")
    _, state, snap = snap_of(config, steps=5)
    train = make_train(config)
    d = jax.tree_util.tree_map(lambda a: a[0], state["d"])
    grad_f = jax.vmap(jax.grad(lambda x: train.critic_scores(d, x[None])[0]))(snap["fake"])
    np.testing.assert_allclose(snap["fake_uv"], np.asarray(grad_f), rtol=1e-4, atol=1e-6)


def test_a_batch_gives_one_snapshot_per_run_from_one_program():
    configs = [Config(width=16, depth=1, batch_size=32, seed=s) for s in (0, 1)]
    runs = Runs(configs)
    snaps = snapshot.take(runs, runs.init(), jax.random.PRNGKey(0), 3.0, RES)
    assert len(snaps) == 2 and snapshot.is_compiled(runs, RES)
    assert not np.array_equal(snaps[0]["fake"], snaps[1]["fake"])  # different seeds


def test_radius_change_moves_the_live_modes_without_recompiling():
    config = Config(width=32, depth=2, batch_size=64)
    runs = Runs([config])
    state = runs.init()
    snapshot.take(runs, state, jax.random.PRNGKey(0), 5.0, RES)
    wide = Runs([config.with_changes(radius=3.0)])
    assert wide.static == runs.static and snapshot.is_compiled(wide, RES)
    (snap,) = snapshot.take(wide, wide.with_hparams(state), jax.random.PRNGKey(0), 5.0, RES)
    np.testing.assert_allclose(np.linalg.norm(snap["real"], axis=1).mean(), 3.0, atol=0.02)


def test_a_frame_with_a_compiled_program_builds_no_networks(monkeypatch):
    # each frame looks its program up; building the game (optimisers, networks) for
    # that was a fifth of a millisecond of Python per frame, for every student
    config = Config(width=16, depth=1, batch_size=32)
    runs = Runs([config])
    state = runs.init()
    state, _ = runs.chunk(state, 2)
    snapshot.take(runs, state, jax.random.PRNGKey(0), 3.0, RES)
    built = []
    real_make_train = snapshot.make_train
    monkeypatch.setattr(snapshot, "make_train", lambda c: built.append(c) or real_make_train(c))
    state, _ = runs.chunk(state, 2)
    (snap,) = snapshot.take(runs, state, jax.random.PRNGKey(0), 3.0, RES)
    assert int(snap["step"]) == 4 and built == []
    fresh = Runs([config.with_changes(width=8)])  # a new program is still built
    snapshot.take(fresh, fresh.init(), jax.random.PRNGKey(0), 3.0, RES)
    assert len(built) == 1
