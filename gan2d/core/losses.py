"""GAN objectives and regularisers: one small pure function each, looked up by name.

Every objective works on raw critic scores ``f`` (logits for the log-loss GANs). Each
entry of ``LOSSES`` is a pair ``(critic_loss, generator_loss)``:

- ``critic_loss(f_real, f_fake, smoothing) -> scalar`` (the critic minimises it)
- ``generator_loss(f_fake) -> scalar`` (the generator minimises it)

``smoothing`` is one-sided label smoothing (Salimans et al. 2016): the real target is
``1 - smoothing``. Only the log-loss objectives use it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


def _bce_critic(f_real, f_fake, smoothing):
    # -[t log D(x) + (1-t) log(1-D(x))] - log(1 - D(G(z))), D = sigmoid(f)
    target = 1.0 - smoothing
    real = target * jax.nn.softplus(-f_real) + (1.0 - target) * jax.nn.softplus(f_real)
    return jnp.mean(real) + jnp.mean(jax.nn.softplus(f_fake))


def minimax_generator(f_fake):
    """The original, saturating objective (Goodfellow et al. 2014): minimise
    E log(1 - D(G(z))). Its gradient vanishes when the critic rejects the fakes."""
    return -jnp.mean(jax.nn.softplus(f_fake))


def ns_generator(f_fake):
    """Non-saturating objective (Goodfellow et al. 2014, sec. 3): minimise
    -E log D(G(z)), strong gradients exactly where the critic rejects the fakes."""
    return jnp.mean(jax.nn.softplus(-f_fake))


def wgan_critic(f_real, f_fake, smoothing):
    """Wasserstein critic (Arjovsky et al. 2017): maximise E f(x) - E f(G(z))."""
    return jnp.mean(f_fake) - jnp.mean(f_real)


def wgan_generator(f_fake):
    """Wasserstein generator: maximise E f(G(z))."""
    return -jnp.mean(f_fake)


def lsgan_critic(f_real, f_fake, smoothing):
    """Least-squares GAN (Mao et al. 2017), targets a=0 (fake), b=1 (real)."""
    return 0.5 * jnp.mean((f_real - 1.0) ** 2) + 0.5 * jnp.mean(f_fake**2)


def lsgan_generator(f_fake):
    """Least-squares generator, target c=1."""
    return 0.5 * jnp.mean((f_fake - 1.0) ** 2)


def hinge_critic(f_real, f_fake, smoothing):
    """Hinge critic (Lim & Ye 2017; Miyato et al. 2018)."""
    return jnp.mean(jax.nn.relu(1.0 - f_real)) + jnp.mean(jax.nn.relu(1.0 + f_fake))


class Objective(NamedTuple):
    critic_loss: callable
    generator_loss: callable
    #: how to read scores as "D(x)" in diagnostics: a probability for log losses
    as_output: callable


def _identity(f):
    return f


LOSSES: dict[str, Objective] = {
    "minimax": Objective(_bce_critic, minimax_generator, jax.nn.sigmoid),
    "ns": Objective(_bce_critic, ns_generator, jax.nn.sigmoid),
    "wgan": Objective(wgan_critic, wgan_generator, _identity),
    "wgan-gp": Objective(wgan_critic, wgan_generator, _identity),
    "lsgan": Objective(lsgan_critic, lsgan_generator, _identity),
    "hinge": Objective(hinge_critic, wgan_generator, _identity),
}


def get_objective(name: str) -> Objective:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


# ------------------------------------------------------------------ regularisers


def _pack_grad_norms_sq(score_fn, x, pack):
    """Squared norm of the critic's input gradient, one per critic input (pack of points)."""
    grads = jax.grad(lambda p: jnp.sum(score_fn(p)))(x)
    return jnp.sum(grads.reshape(x.shape[0] // pack, 2 * pack) ** 2, axis=1)


def gradient_penalty(score_fn, real, fake, key, pack: int = 1):
    """WGAN-GP (Gulrajani et al. 2017): E (||grad f(x_hat)|| - 1)^2 on random
    interpolates x_hat between real and fake points (one mixing weight per critic
    input, so a pack is interpolated as a whole). ``score_fn`` maps (n, 2) points to
    (n / pack,) scores."""
    n = real.shape[0]
    eps = jnp.repeat(jax.random.uniform(key, (n // pack, 1)), pack, axis=0)
    x_hat = eps * real + (1.0 - eps) * fake
    norms = jnp.sqrt(_pack_grad_norms_sq(score_fn, x_hat, pack) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


def r1_penalty(score_fn, real, pack: int = 1):
    """R1 (Mescheder et al. 2018): E ||grad f(x)||^2 on real points. The caller
    multiplies by weight / 2, as in the paper."""
    return jnp.mean(_pack_grad_norms_sq(score_fn, real, pack))


def clip_weights(params, clip):
    """WGAN weight clipping to [-clip, clip] (Arjovsky et al. 2017)."""
    return jax.tree_util.tree_map(lambda p: jnp.clip(p, -clip, clip), params)
