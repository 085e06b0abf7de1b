"""Training as pure functions: ``make_train(config)`` -> ``init`` / ``step`` / ``chunk``.

``chunk(state, n, mode)`` runs n GAN steps in one ``lax.scan`` and returns per-step
diagnostics as arrays of length n (no host sync per step). Nothing here is jitted or
batched: ``gan2d.core.runs`` compiles these functions, vmapped over a batch of runs
(a single run is a batch of one), through the process-wide compile cache.

Design choices worth knowing:

- The state carries its own PRNG key and step counter; the key of step t is
  ``fold_in(key, t)``. A run is therefore identical however it is cut into chunks
  (the CLI's 500-step chunks, the app's frame-sized chunks).
- Everything in ``Config.hparams()`` (learning rates, penalty weights, noise, EMA...)
  lives in ``state["hp"]`` as float32 scalars and is written into the optimisers'
  ``inject_hyperparams`` state every step: changing it never recompiles.
- The functions depend on the config's static part only (``Config.static_part()``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gan2d.core import data, losses, nets
from gan2d.core.config import Config

DIAGNOSTICS = ("d_loss", "g_loss", "d_grad_norm", "g_grad_norm", "d_real", "d_fake")
MODES = ("both", "d", "g")
ADAM_EPS_ROOT = 1e-16


def hparams_array(config: Config) -> dict[str, jax.Array]:
    """The data part of ``config`` as the float32 scalars a state carries."""
    return {k: jnp.float32(v) for k, v in config.hparams().items()}


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Optimiser with injectable hyper-parameters (values are overwritten each step)."""
    if config.optimizer == "adam":
        # eps_root keeps d sqrt(v) / dv finite where v = 0 (dead ReLUs), which unrolled
        # GANs differentiate through; it is far below any real second moment.
        return optax.inject_hyperparams(optax.adam)(
            learning_rate=1e-4, b1=0.5, b2=0.9, eps_root=ADAM_EPS_ROOT
        )
    if config.optimizer == "sgd":
        return optax.inject_hyperparams(optax.sgd)(learning_rate=1e-4, momentum=0.0)
    return optax.inject_hyperparams(optax.rmsprop)(learning_rate=1e-4, decay=0.9)


def _with_hparams(opt_state, optimizer: str, lr, hp):
    """Write the current learning rate and betas into an inject_hyperparams state."""
    values = {"learning_rate": lr}
    if optimizer == "adam":
        values.update(b1=hp["beta1"], b2=hp["beta2"])
    elif optimizer == "sgd":
        values.update(momentum=hp["beta1"])
    else:
        values.update(decay=hp["beta2"])
    merged = {
        **opt_state.hyperparams,
        **{k: jnp.asarray(v, jnp.float32) for k, v in values.items()},
    }
    return opt_state._replace(hyperparams=merged)


def _ramp(hp, span_name: str, step):
    """0 at step 0, rising linearly to 1 over ``hp[span_name]`` steps (0 = always 0)."""
    span = hp[span_name]
    return jnp.where(span > 0, jnp.clip(step / jnp.maximum(span, 1.0), 0.0, 1.0), 0.0)


def decayed(lr, hp, step):
    """Linear decay to 10% of ``lr`` over ``lr_decay_steps`` (0 = constant)."""
    return lr * (1.0 - 0.9 * _ramp(hp, "lr_decay_steps", step))


def noise_std(hp, step):
    """Instance-noise std at ``step``: linear decay to 0 over ``noise_decay_steps``."""
    return hp["instance_noise"] * (1.0 - _ramp(hp, "noise_decay_steps", step))


class Game:
    """The GAN of one static config: its losses, updates and step, as pure methods.

    The critic update, the generator loss (with the unrolled look-ahead) and the step
    that alternates them are separate methods; ``Train`` exposes the ones callers use.
    """

    def __init__(self, config: Config):
        self.config = config
        self.objective = losses.get_objective(config.loss)
        self.sample_real = data.make_sampler(config)
        self.tx = make_optimizer(config)

    # ------------------------------------------------------------------ pieces
    def noisy(self, x, key, hp, step):
        """Instance noise on critic inputs, compiled in only when it is on."""
        if self.config.instance_noise <= 0:
            return x
        return x + noise_std(hp, step) * jax.random.normal(key, x.shape)

    def fakes(self, g, key):
        config = self.config
        return nets.generate(g, nets.sample_latent(key, config.batch_size, config), config)

    def d_loss(self, d, g, key, hp, step):
        """The critic's objective with its penalties; aux: raw scores of real and fake."""
        config = self.config
        k_real, k_z, k_gp, k_nr, k_nf = jax.random.split(key, 5)
        real = self.noisy(self.sample_real(k_real, config.batch_size, hp), k_nr, hp, step)
        fake = self.noisy(self.fakes(g, k_z), k_nf, hp, step)

        def score(x):
            return nets.critic(d, x, config)

        f_real, f_fake = score(real), score(fake)
        loss = self.objective.critic_loss(f_real, f_fake, hp["label_smoothing"])
        if config.loss == "wgan-gp":
            penalty = losses.gradient_penalty(score, real, fake, k_gp, config.pack)
            loss = loss + hp["gp_weight"] * penalty
        if config.r1_weight > 0:
            loss = loss + 0.5 * hp["r1_weight"] * losses.r1_penalty(score, real, config.pack)
        return loss, (f_real, f_fake)

    def d_update(self, d, d_opt, g, key, hp, step):
        """One optimiser step of the critic (with WGAN clipping where it applies)."""
        (loss, (f_real, f_fake)), grads = jax.value_and_grad(self.d_loss, has_aux=True)(
            d, g, key, hp, step
        )
        lr = decayed(hp["lr_d"], hp, step)
        d_opt = _with_hparams(d_opt, self.config.optimizer, lr, hp)
        updates, d_opt = self.tx.update(grads, d_opt, d)
        d = optax.apply_updates(d, updates)
        if self.config.loss == "wgan":
            d = losses.clip_weights(d, hp["clip"])
        return d, d_opt, (loss, optax.tree.norm(grads), f_real, f_fake)

    def g_loss(self, g, d, d_opt, key, hp, step):
        """The generator's objective, against the critic k look-ahead updates on.

        Metz et al. 2017: with ``unrolled_steps`` = k > 0 the generator plays against
        the critic after k more differentiable critic updates (through the optimiser
        update itself); those updates are then thrown away. k = 0 is the plain step."""
        k_z, k_noise, k_unroll = jax.random.split(key, 3)
        d_ahead = d
        if self.config.unrolled_steps > 0:
            keys = jax.random.split(k_unroll, self.config.unrolled_steps)
            d_ahead, _, _ = self.critic_updates(d, d_opt, g, keys, hp, step)
        fake = self.noisy(self.fakes(g, k_z), k_noise, hp, step)
        f_fake = nets.critic(d_ahead, fake, self.config)
        return self.objective.generator_loss(f_fake), f_fake

    def critic_phase(self, state, key, mode):
        """``d_steps`` critic updates (none in mode "g": only the loss is measured)."""
        hp, step, g = state["hp"], state["step"], state["g"]
        d, d_opt = state["d"], state["d_opt"]
        if mode == "g":
            (loss, (f_real, f_fake)), grads = jax.value_and_grad(self.d_loss, has_aux=True)(
                d, g, key, hp, step
            )
            return d, d_opt, (loss, optax.tree.norm(grads), f_real, f_fake)

        keys = jax.random.split(key, self.config.d_steps)
        d, d_opt, outs = self.critic_updates(d, d_opt, g, keys, hp, step)
        return d, d_opt, jax.tree_util.tree_map(lambda a: a[-1], outs)

    def critic_updates(self, d, d_opt, g, keys, hp, step):
        """One critic update per key, in a ``lax.scan``: (critic, its optimiser state,
        each update's loss, gradient norm and scores)."""

        def update(carry, k):
            d_i, opt_i = carry
            d_i, opt_i, out = self.d_update(d_i, opt_i, g, k, hp, step)
            return (d_i, opt_i), out

        (d, d_opt), outs = jax.lax.scan(update, (d, d_opt), keys)
        return d, d_opt, outs

    # ------------------------------------------------------------------ the step
    def step(self, state, mode: str = "both"):
        """One training step: critic phase, then the generator (not in mode "d")."""
        hp, step = state["hp"], state["step"]
        k_d, k_g = jax.random.split(jax.random.fold_in(state["key"], step))
        d, d_opt, (d_loss, d_norm, f_real, f_fake) = self.critic_phase(state, k_d, mode)
        g, g_opt, g_ema = state["g"], state["g_opt"], state["g_ema"]
        (g_loss, _), g_grads = jax.value_and_grad(self.g_loss, has_aux=True)(
            g, d, d_opt, k_g, hp, step
        )
        if mode != "d":
            g_opt = _with_hparams(g_opt, self.config.optimizer, decayed(hp["lr_g"], hp, step), hp)
            updates, g_opt = self.tx.update(g_grads, g_opt, g)
            g = optax.apply_updates(g, updates)
            g_ema = jax.tree_util.tree_map(
                lambda e, p: hp["ema"] * e + (1.0 - hp["ema"]) * p, g_ema, g
            )
        new_state = {**state, "g": g, "d": d, "g_opt": g_opt, "d_opt": d_opt}
        new_state.update(g_ema=g_ema, step=step + 1)
        as_output = self.objective.as_output
        diag = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_grad_norm": d_norm,
            "g_grad_norm": optax.tree.norm(g_grads),
            "d_real": jnp.mean(as_output(f_real)),
            "d_fake": jnp.mean(as_output(f_fake)),
        }
        return new_state, diag

    def chunk(self, state, n: int, mode: str = "both"):
        """``n`` steps in one ``lax.scan``: (state, diagnostics of length n)."""
        return jax.lax.scan(lambda s, _: self.step(s, mode), state, None, length=n)

    def init(self, key, hp):
        """A fresh state from ``key``, carrying the data hyper-parameters ``hp``."""
        k_g, k_d, k_run = jax.random.split(key, 3)
        g = nets.init_generator(k_g, self.config)
        d = nets.init_critic(k_d, self.config)
        return {
            "g": g,
            "d": d,
            "g_ema": g,
            "g_opt": self.tx.init(g),
            "d_opt": self.tx.init(d),
            "step": jnp.int32(0),
            "key": k_run,
            "hp": hp,
        }


class Train(NamedTuple):
    """The pure functions of one static config (see the module docstring)."""

    config: Config  # the static part these functions were built for
    init: Any  # (key, hp) -> state
    step: Any  # (state, mode) -> (state, diag)
    chunk: Any  # (state, n, mode) -> (state, diag of length n)
    generate: Any  # (g_params, z) -> points
    critic_scores: Any  # (d_params, x, reference) -> raw scores per point
    objective: losses.Objective
    optimizer: optax.GradientTransformation


def make_train(config: Config) -> Train:
    """The training functions of ``config``'s static part (validated first)."""
    static = config.validate().static_part()
    game = Game(static)
    return Train(
        config=static,
        init=game.init,
        step=game.step,
        chunk=game.chunk,
        generate=lambda g, z: nets.generate(g, z, static),
        critic_scores=lambda d, x, ref=None: nets.critic_pointwise(d, x, static, ref),
        objective=game.objective,
        optimizer=game.tx,
    )
