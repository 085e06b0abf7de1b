"""The mode protocol and exact W1, checked against what a perfect sampler must score."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from gan2d.core import data, metrics
from gan2d.core.config import Config


def perfect(config, seed):
    return data.sample_numpy(config, metrics.PROTOCOL_SAMPLES, seed)


@pytest.mark.parametrize("dataset, k", [("ring8", 8), ("grid25", 25)])
def test_perfect_sampler_scores_all_modes_98_9_hq_and_tiny_rkl(dataset, k):
    config = Config.from_dict({"dataset": dataset})
    means = data.mode_means(config)
    hqs, rkls = [], []
    for seed in range(8):
        m = metrics.mode_metrics(perfect(config, seed), means, config.data_std)
        assert m["modes"] == k
        hqs.append(m["hq"])
        rkls.append(m["rkl"])
    assert metrics.perfect_hq_percent() == pytest.approx(98.889, abs=1e-3)
    assert np.mean(hqs) == pytest.approx(metrics.perfect_hq_percent(), abs=0.3)
    n_hq = metrics.PROTOCOL_SAMPLES * 0.989
    # E[rkl] of a multinomial histogram is about (K - 1) / (2 N)
    assert np.mean(rkls) == pytest.approx((k - 1) / (2 * n_hq), rel=0.35)


def test_a_collapsed_sampler_scores_one_mode_and_rkl_log_k():
    config = Config()
    means = data.mode_means(config)
    samples = np.repeat(means[:1], 2500, axis=0)
    m = metrics.mode_metrics(samples, means, config.data_std)
    assert m["modes"] == 1 and m["hq"] == 100.0
    assert m["rkl"] == pytest.approx(math.log(8))


def test_points_between_modes_are_not_high_quality():
    config = Config()
    samples = np.zeros((100, 2))  # the ring's centre: 2 away from every mode
    m = metrics.mode_metrics(samples, data.mode_means(config), config.data_std)
    assert m == {"modes": 0, "hq": 0.0, "rkl": None, "mode_counts": [0] * 8}


def test_w1_of_a_translated_sample_is_the_translation_length():
    a = np.random.default_rng(0).normal(size=(300, 2))
    assert metrics.w1(a, a + np.array([0.3, 0.4])) == pytest.approx(0.5, abs=1e-12)
    assert metrics.w1(a, a[::-1]) == pytest.approx(0.0, abs=1e-12)


def test_w1_refuses_unequal_sizes():
    with pytest.raises(ValueError, match="equal-size"):
        metrics.w1(np.zeros((3, 2)), np.zeros((4, 2)))


def test_device_metrics_agree_with_the_host_protocol():
    config = Config.from_dict({"dataset": "grid25"})
    means = data.mode_means(config)
    rng = np.random.default_rng(1)
    samples = np.concatenate([perfect(config, 3)[:2000], rng.uniform(-5, 5, (500, 2))])
    host = metrics.mode_metrics(samples, means, config.data_std)
    dev = metrics.mode_metrics_jax(
        jnp.asarray(samples, jnp.float32), jnp.asarray(means, jnp.float32), config.data_std
    )
    assert int(dev["modes"]) == host["modes"]
    assert float(dev["hq"]) == pytest.approx(host["hq"], abs=0.05)
    assert float(dev["rkl"]) == pytest.approx(host["rkl"], abs=1e-4)


def test_sliced_w1_is_zero_for_identical_and_grows_with_shift():
    import jax

    a = jnp.asarray(np.random.default_rng(0).normal(size=(256, 2)), jnp.float32)
    key = jax.random.PRNGKey(0)
    assert float(metrics.sliced_w1_jax(key, a, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(metrics.sliced_w1_jax(key, a, a + 1.0)) > float(
        metrics.sliced_w1_jax(key, a, a + 0.1)
    )


def test_host_sliced_w1_is_exact_for_a_shift_and_agrees_with_the_device_one():
    import jax

    a = np.random.default_rng(1).normal(size=(512, 2))
    assert metrics.sliced_w1(a, a) == 0.0
    # a shift s along x moves each projection by |s cos t|: the mean over the evenly
    # spread directions in [0, pi) is 2s/pi (up to the midpoint rule's tiny error)
    assert metrics.sliced_w1(a, a + [0.5, 0.0]) == pytest.approx(1.0 / np.pi, rel=1e-3)
    b = np.random.default_rng(2).normal(size=(512, 2)) * 1.5
    device = float(metrics.sliced_w1_jax(jax.random.PRNGKey(0), a, b, n_projections=256))
    assert metrics.sliced_w1(a, b) == pytest.approx(device, rel=0.1)
    with pytest.raises(ValueError, match="equal-size"):
        metrics.sliced_w1(a, b[:10])


def test_nan_samples_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        metrics.mode_metrics(np.full((5, 2), np.nan), data.mode_means(Config()), 0.02)
