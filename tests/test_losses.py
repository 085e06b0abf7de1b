"""Each objective and regulariser against values worked out by hand."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from gan2d.core import losses

LOG2 = math.log(2.0)


def close(a, b):
    return np.testing.assert_allclose(float(a), b, rtol=1e-6, atol=1e-7)


def test_log_loss_critic_at_indifference_is_2_log_2():
    # D = sigmoid(0) = 1/2 everywhere: -log 1/2 - log 1/2
    for name in ("minimax", "ns"):
        close(losses.LOSSES[name].critic_loss(jnp.zeros(4), jnp.zeros(4), 0.0), 2 * LOG2)


def test_log_loss_critic_with_one_sided_label_smoothing():
    # real target t = 0.9: -(0.9 log s(2) + 0.1 log(1 - s(2))) - log(1 - s(-1))
    s = 1 / (1 + math.exp(-2.0))
    expected = -(0.9 * math.log(s) + 0.1 * math.log(1 - s)) - math.log(1 - 1 / (1 + math.e))
    close(losses.LOSSES["ns"].critic_loss(jnp.array([2.0]), jnp.array([-1.0]), 0.1), expected)


def test_minimax_generator_is_log_of_one_minus_d_and_saturates():
    d = 1 / (1 + math.exp(3.0))  # D(G(z)) for score -3
    close(losses.minimax_generator(jnp.array([-3.0])), math.log(1 - d))
    # slope wrt the score: minimax -D, ns -(1 - D). Far from fooling D, minimax's is tiny.
    import jax

    g_mm = jax.grad(lambda f: losses.minimax_generator(f[None]))(-8.0)
    g_ns = jax.grad(lambda f: losses.ns_generator(f[None]))(-8.0)
    assert abs(g_mm) < 1e-3 < abs(g_ns)


def test_ns_generator_is_minus_log_d():
    close(losses.ns_generator(jnp.array([0.0, 0.0])), LOG2)


def test_wgan_losses():
    close(losses.wgan_critic(jnp.array([1.0, 3.0]), jnp.array([0.5]), 0.0), 0.5 - 2.0)
    close(losses.wgan_generator(jnp.array([0.5, 1.5])), -1.0)


def test_lsgan_losses():
    close(losses.lsgan_critic(jnp.array([2.0]), jnp.array([1.0]), 0.0), 0.5 + 0.5)
    close(losses.lsgan_generator(jnp.array([3.0])), 2.0)


def test_hinge_critic_counts_only_margin_violations():
    close(losses.hinge_critic(jnp.array([0.5, 2.0]), jnp.array([-0.5, -3.0]), 0.0), 0.25 + 0.25)


def linear_critic(w, pack=1):
    w = jnp.asarray(w, jnp.float32)
    return lambda x: x.reshape(x.shape[0] // pack, 2 * pack) @ w


@pytest.mark.parametrize("pack", [1, 2])
def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared(pack):
    import jax

    w = jnp.array([1.2, -1.6] * pack)  # |w| = 2 * sqrt(pack)
    real = jax.random.normal(jax.random.PRNGKey(0), (8, 2))
    fake = jax.random.normal(jax.random.PRNGKey(1), (8, 2))
    gp = losses.gradient_penalty(linear_critic(w, pack), real, fake, jax.random.PRNGKey(2), pack)
    close(gp, (2 * math.sqrt(pack) - 1) ** 2)


def test_r1_of_a_linear_critic_is_its_squared_norm():
    real = jnp.ones((6, 2))
    close(losses.r1_penalty(linear_critic([1.2, -1.6]), real), 4.0)


def test_clip_weights():
    out = losses.clip_weights({"w": jnp.array([-1.0, 0.005, 2.0])}, 0.01)
    np.testing.assert_allclose(out["w"], [-0.01, 0.005, 0.01])


def test_unknown_loss_is_refused_by_name():
    with pytest.raises(ValueError, match="hinge"):
        losses.get_objective("gan")
