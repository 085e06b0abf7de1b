"""Training as pure functions: ``make_train(config)`` -> init / chunk.

``chunk(state, n)`` runs n GAN steps in one ``lax.scan`` under ``jit`` and returns
per-step diagnostics as arrays of length n (no host sync per step).

Design choices worth knowing:

- The state carries its own PRNG key and step counter; the key of step t is
  ``fold_in(key, t)``. A run is therefore identical however it is cut into chunks
  (the CLI's 500-step chunks, the app's variable frame-sized chunks).
- Everything in ``Config.hparams()`` (learning rates, penalty weights, noise, EMA...)
  lives in ``state["hp"]`` as float32 scalars and is written into the optimisers'
  ``inject_hyperparams`` state every step: changing it never recompiles.
- Compiled programs are cached by ``Config.static_key()`` and shared by every caller in
  the process (app sessions, sweeps, the CLI).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan2d import data, losses, nets
from gan2d.config import Config

DIAGNOSTICS = ("d_loss", "g_loss", "d_grad_norm", "g_grad_norm", "d_real", "d_fake")
MODES = ("both", "d", "g")
ADAM_EPS_ROOT = 1e-16


def canonical(config: Config) -> Config:
    """The config with every data field at its default: equal for equal static keys."""
    default = Config()
    changes = {name: getattr(default, name) for name in config.hparams()}
    changes["seed"] = 0
    changes["r1_weight"] = 1.0 if config.r1_weight > 0 else 0.0
    changes["instance_noise"] = 1.0 if config.instance_noise > 0 else 0.0
    return replace(config, **changes)


def hparams_array(config: Config) -> dict[str, jax.Array]:
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


def _with_hparams(opt_state, config: Config, lr, hp):
    """Write the current learning rate and betas into an inject_hyperparams state."""
    values = {"learning_rate": lr}
    if config.optimizer == "adam":
        values.update(b1=hp["beta1"], b2=hp["beta2"])
    elif config.optimizer == "sgd":
        values.update(momentum=hp["beta1"])
    else:
        values.update(decay=hp["beta2"])
    merged = {
        **opt_state.hyperparams,
        **{k: jnp.asarray(v, jnp.float32) for k, v in values.items()},
    }
    return opt_state._replace(hyperparams=merged)


def decayed(lr, hp, step):
    """Linear decay to 10% of ``lr`` over ``lr_decay_steps`` (0 = constant)."""
    span = hp["lr_decay_steps"]
    frac = jnp.where(span > 0, jnp.clip(step / jnp.maximum(span, 1.0), 0.0, 1.0), 0.0)
    return lr * (1.0 - 0.9 * frac)


def noise_std(hp, step):
    """Instance-noise std at ``step``: linear decay to 0 over ``noise_decay_steps``."""
    span = hp["noise_decay_steps"]
    frac = jnp.where(span > 0, jnp.clip(step / jnp.maximum(span, 1.0), 0.0, 1.0), 0.0)
    return hp["instance_noise"] * (1.0 - frac)


@dataclass(frozen=True)
class Programs:
    """The pure functions of one static config, before and after ``jit``."""

    init: Any  # (key, hp) -> state
    step: Any  # (state, mode) -> (state, diag)   pure, not jitted
    chunk_impl: Any  # (state, n, mode) -> (state, diag)   pure, not jitted
    chunk: Any  # jitted chunk_impl, static n and mode
    critic_scores: Any  # (d_params, x, reference) -> raw scores per point
    generate: Any  # (g_params, z) -> points
    objective: losses.Objective


def _build(config: Config) -> Programs:
    objective = losses.get_objective(config.loss)
    sample_real = data.make_sampler(config)
    d_tx = make_optimizer(config)
    g_tx = make_optimizer(config)
    batch = config.batch_size
    use_noise = config.instance_noise > 0
    use_r1 = config.r1_weight > 0

    def add_noise(x, key, hp, step):
        if not use_noise:
            return x
        return x + noise_std(hp, step) * jax.random.normal(key, x.shape)

    def d_loss_fn(d, g, key, hp, step):
        k_real, k_z, k_gp, k_nr, k_nf = jax.random.split(key, 5)
        real = add_noise(sample_real(k_real, batch, hp), k_nr, hp, step)
        fake = add_noise(
            nets.generate(g, nets.sample_latent(k_z, batch, config), config), k_nf, hp, step
        )

        def score(x):
            return nets.critic(d, x, config)

        f_real, f_fake = score(real), score(fake)
        loss = objective.critic_loss(f_real, f_fake, hp["label_smoothing"])
        if config.loss == "wgan-gp":
            loss = loss + hp["gp_weight"] * losses.gradient_penalty(
                score, real, fake, k_gp, config.pack
            )
        if use_r1:
            loss = loss + 0.5 * hp["r1_weight"] * losses.r1_penalty(score, real, config.pack)
        return loss, (f_real, f_fake)

    def d_update(d, d_opt, g, key, hp, step):
        (loss, (f_real, f_fake)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            d, g, key, hp, step
        )
        d_opt = _with_hparams(d_opt, config, decayed(hp["lr_d"], hp, step), hp)
        updates, d_opt = d_tx.update(grads, d_opt, d)
        d = optax.apply_updates(d, updates)
        if config.loss == "wgan":
            d = losses.clip_weights(d, hp["clip"])
        return d, d_opt, (loss, optax.tree.norm(grads), f_real, f_fake)

    def g_loss_fn(g, d, d_opt, key, hp, step):
        k_z, k_noise, k_unroll = jax.random.split(key, 3)
        d_ahead = d
        if config.unrolled_steps > 0:
            # Metz et al. 2017: the generator plays against the critic after k more
            # differentiable critic updates; those updates are then thrown away.
            def look_ahead(carry, k):
                d_k, opt_k = carry
                d_k, opt_k, _ = d_update(d_k, opt_k, g, k, hp, step)
                return (d_k, opt_k), None

            keys = jax.random.split(k_unroll, config.unrolled_steps)
            (d_ahead, _), _ = jax.lax.scan(look_ahead, (d, d_opt), keys)
        fake = nets.generate(g, nets.sample_latent(k_z, batch, config), config)
        f_fake = nets.critic(d_ahead, add_noise(fake, k_noise, hp, step), config)
        return objective.generator_loss(f_fake), f_fake

    def step_fn(state, mode):
        hp, step = state["hp"], state["step"]
        key = jax.random.fold_in(state["key"], step)
        k_d, k_g = jax.random.split(key)
        g, d, d_opt = state["g"], state["d"], state["d_opt"]
        if mode == "g":
            (d_loss, (f_real, f_fake)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
                d, g, k_d, hp, step
            )
            d_norm = optax.tree.norm(d_grads)
        else:

            def critic_step(carry, k):
                d_i, opt_i = carry
                d_i, opt_i, out = d_update(d_i, opt_i, g, k, hp, step)
                return (d_i, opt_i), out

            (d, d_opt), outs = jax.lax.scan(
                critic_step, (d, d_opt), jax.random.split(k_d, config.d_steps)
            )
            d_loss, d_norm, f_real, f_fake = jax.tree_util.tree_map(lambda a: a[-1], outs)

        (g_loss, _), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            g, d, d_opt, k_g, hp, step
        )
        g_opt, g_ema = state["g_opt"], state["g_ema"]
        if mode != "d":
            g_opt = _with_hparams(g_opt, config, decayed(hp["lr_g"], hp, step), hp)
            updates, g_opt = g_tx.update(g_grads, g_opt, g)
            g = optax.apply_updates(g, updates)
            g_ema = jax.tree_util.tree_map(
                lambda e, p: hp["ema"] * e + (1.0 - hp["ema"]) * p, g_ema, g
            )
        new_state = {
            **state,
            "g": g,
            "d": d,
            "g_opt": g_opt,
            "d_opt": d_opt,
            "g_ema": g_ema,
            "step": step + 1,
        }
        diag = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_grad_norm": d_norm,
            "g_grad_norm": optax.tree.norm(g_grads),
            "d_real": jnp.mean(objective.as_output(f_real)),
            "d_fake": jnp.mean(objective.as_output(f_fake)),
        }
        return new_state, diag

    def chunk_impl(state, n, mode="both"):
        return jax.lax.scan(lambda s, _: step_fn(s, mode), state, None, length=n)

    def init(key, hp):
        k_g, k_d, k_run = jax.random.split(key, 3)
        g = nets.init_generator(k_g, config)
        d = nets.init_critic(k_d, config)
        return {
            "g": g,
            "d": d,
            "g_ema": g,
            "g_opt": g_tx.init(g),
            "d_opt": d_tx.init(d),
            "step": jnp.int32(0),
            "key": k_run,
            "hp": hp,
        }

    donate = (0,) if jax.default_backend() != "cpu" else ()
    return Programs(
        init=init,
        step=step_fn,
        chunk_impl=chunk_impl,
        chunk=jax.jit(chunk_impl, static_argnums=(1, 2), donate_argnums=donate),
        critic_scores=lambda d, x, ref=None: nets.critic_pointwise(d, x, config, ref),
        generate=lambda g, z: nets.generate(g, z, config),
        objective=objective,
    )


@functools.lru_cache(maxsize=32)
def programs_for(canonical_config: Config) -> Programs:
    """Compiled programs for one static config; shared process-wide."""
    return _build(canonical_config)


@dataclass(frozen=True)
class Trainer:
    """What ``make_train`` returns: the config plus its (shared) compiled programs."""

    config: Config
    programs: Programs

    def init(self, key=None):
        """Fresh state from ``key`` (default: the config's seed)."""
        if key is None:
            key = jax.random.PRNGKey(self.config.seed)
        return _jit_init(self.programs)(key, hparams_array(self.config))

    def chunk(self, state, n: int, mode: str = "both"):
        """Run ``n`` steps (``mode``: both nets, critic only "d", generator only "g")."""
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; choose one of {', '.join(MODES)}")
        return self.programs.chunk(state, int(n), mode)

    def with_hparams(self, state, config: Config):
        """The same state with the data hyper-parameters of ``config`` (no recompile)."""
        return {**state, "hp": hparams_array(config)}

    def adopt(self, old_state):
        """Carry parameters from a state of another static config when shapes fit.

        Returns a state for this trainer, or None if the networks' shapes differ.
        Optimiser states are kept when their structure fits too, else re-initialised.
        """
        fresh = jax.eval_shape(self.init, jax.random.PRNGKey(0))
        if not _same_shapes(fresh["g"], old_state["g"]) or not _same_shapes(
            fresh["d"], old_state["d"]
        ):
            return None
        state = {**old_state, "hp": hparams_array(self.config)}
        for net, opt in (("g", "g_opt"), ("d", "d_opt")):
            if not _same_shapes(fresh[opt], old_state[opt]):
                tx = make_optimizer(self.config)
                state[opt] = tx.init(old_state[net])
        return state


def _same_shapes(a, b) -> bool:
    sa, sb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
    if sa != sb:
        return False
    return all(
        np.shape(x) == np.shape(y)
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


@functools.lru_cache(maxsize=32)
def _jit_init(programs: Programs):
    return jax.jit(programs.init)


def make_train(config: Config) -> Trainer:
    """Validated config -> Trainer with ``init(key)`` and ``chunk(state, n)``."""
    config.validate()
    return Trainer(config, programs_for(canonical(config)))


# ------------------------------------------------------------------ whole runs


@dataclass
class RunResult:
    state: dict
    history: dict[str, np.ndarray]
    seconds: float
    compile_seconds: float
    steps: int

    @property
    def steps_per_s(self) -> float:
        return self.steps / max(self.seconds - self.compile_seconds, 1e-9)


def train_run(config: Config, steps: int, chunk_size: int = 500, key=None) -> RunResult:
    """Train ``steps`` steps from ``config.seed`` and keep the full per-step history.

    ``compile_seconds`` is the time of the first chunk minus its share of running time
    estimated from the following chunks, so ``steps_per_s`` measures steady-state speed.
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be at least 1")
    trainer = make_train(config)
    start = time.perf_counter()
    state = trainer.init(key)
    history = {k: [] for k in DIAGNOSTICS}
    done, first_chunk = 0, None
    while done < steps:
        n = min(chunk_size, steps - done)
        t0 = time.perf_counter()
        state, diag = trainer.chunk(state, n)
        diag = jax.device_get(diag)
        if first_chunk is None:
            first_chunk = (time.perf_counter() - t0, n)
        for k in DIAGNOSTICS:
            history[k].append(np.asarray(diag[k]))
        done += n
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start
    hist = {k: np.concatenate(v) for k, v in history.items()}
    rest_time = seconds - first_chunk[0]
    rest_steps = steps - first_chunk[1]
    per_step = rest_time / rest_steps if rest_steps > 0 else 0.0
    compile_seconds = max(first_chunk[0] - per_step * first_chunk[1], 0.0)
    return RunResult(state, hist, seconds, compile_seconds, steps)


def evaluate_state(config: Config, state, n: int | None = None) -> dict:
    """The protocol numbers of a trained state, as the CLI reports them.

    Samples come from the EMA generator when ``config.ema > 0``; generated and real
    samples use fixed seeds derived from ``config.seed``. A run whose samples are not
    finite is reported as diverged.
    """
    from gan2d import metrics

    n = n or metrics.PROTOCOL_SAMPLES
    g_eval = state["g_ema"] if config.ema > 0 else state["g"]
    samples = sample_generator(config, g_eval, n, config.seed + 10_000)
    real = data.sample_numpy(config, n, config.seed + 20_000)
    if not np.isfinite(samples).all():
        result = {"diverged": True, "modes": 0, "hq": 0.0, "rkl": None, "w1": None}
    else:
        result = {"diverged": False}
        result.update(metrics.evaluate(samples, real, data.mode_means(config), config.data_std))
        result.pop("mode_counts", None)
    return {**result, "samples": samples, "real": real}


def sample_generator(config: Config, g_params, n: int, seed: int) -> np.ndarray:
    """Draw ``n`` points from generator parameters ``g_params``."""
    programs = programs_for(canonical(config))
    z = nets.sample_latent(jax.random.PRNGKey(seed), n, config)
    return np.asarray(jax.jit(programs.generate)(g_params, z), dtype=np.float64)
