"""What the app draws, computed on device in one jitted call per frame.

``make_snapshot(config)`` returns ``snapshot(state, key, extent) -> dict`` of small
float32 arrays: fake and real samples, the critic on a square grid, the direction the
generator's loss pushes each fake point and each point of a coarse grid, the generator's
image of a latent grid (its manifold), per-point critic outputs for the histograms, and
the live mode metrics. ``to_host`` brings it over and adds the sliced W1 of fake vs
real, computed with numpy (on a CPU, XLA's sort would double the snapshot's cost).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gan2d import data, metrics, nets
from gan2d.config import Config
from gan2d.train import canonical, programs_for


@dataclass(frozen=True)
class Resolution:
    samples: int = 512
    grid: int = 64
    arrows: int = 16
    manifold: int = 24


def square_grid(extent, res: int):
    """(res*res, 2) points on [-extent, extent]^2, row-major with y as the row."""
    axis = jnp.linspace(-extent, extent, res)
    xx, yy = jnp.meshgrid(axis, axis)
    return jnp.stack([xx.ravel(), yy.ravel()], axis=1)


def latent_grid(config: Config, res: int):
    """A res x res grid over the first two latent dims (others 0): +-2 std for a
    Gaussian prior, the full box for a uniform one. With z_dim = 1, a line."""
    span = 1.0 if config.prior == "uniform" else 2.0
    axis = jnp.linspace(-span, span, res)
    if config.z_dim == 1:
        return axis[:, None]
    xx, yy = jnp.meshgrid(axis, axis)
    z = jnp.zeros((res * res, config.z_dim))
    return z.at[:, 0].set(xx.ravel()).at[:, 1].set(yy.ravel())


def _build_snapshot(config: Config, res: Resolution):
    programs = programs_for(canonical(config))
    objective = programs.objective
    sampler = data.make_sampler(config)
    means = data.mode_means(config)
    means = None if means is None else jnp.asarray(means, jnp.float32)

    def push(d, x, reference):
        # the direction that lowers each point's generator loss: where G moves it
        def total(p):
            return p.shape[0] * objective.generator_loss(programs.critic_scores(d, p, reference))

        return -jax.grad(total)(x)

    def snapshot(state, key, extent):
        k_z, k_real = jax.random.split(key)
        g, d, hp = state["g"], state["d"], state["hp"]
        z = nets.sample_latent(k_z, res.samples, config)
        fake = programs.generate(g, z)
        real = sampler(k_real, res.samples, hp)
        grid = square_grid(extent, res.grid)
        arrows_at = square_grid(extent * (1 - 1 / res.arrows), res.arrows)
        out = {
            "fake": fake,
            "real": real,
            "critic": objective.as_output(programs.critic_scores(d, grid, fake)).reshape(
                res.grid, res.grid
            ),
            "arrow_xy": arrows_at,
            "arrow_uv": push(d, arrows_at, fake),
            "fake_uv": push(d, fake, fake),
            "d_real_values": objective.as_output(programs.critic_scores(d, real, fake)),
            "d_fake_values": objective.as_output(programs.critic_scores(d, fake, fake)),
            "manifold": programs.generate(g, latent_grid(config, res.manifold)),
            "step": state["step"],
        }
        if means is not None:
            live_means = means
            if config.dataset == "ring8":  # radius is data: rescale the canonical ring
                live_means = means * (hp["radius"] / config.radius)
            m = metrics.mode_metrics_jax(fake, live_means, hp["data_std"])
            out.update({f"live_{k}": v for k, v in m.items()})
        return out

    return jax.jit(snapshot)


@functools.lru_cache(maxsize=32)
def _snapshot_cached(canonical_config: Config, res: Resolution):
    return _build_snapshot(canonical_config, res)


def make_snapshot(config: Config, res: Resolution = Resolution()):
    """``snapshot(state, key, extent) -> dict`` for this config's static part."""
    return _snapshot_cached(canonical(config), res)


def to_host(snap: dict) -> dict[str, np.ndarray]:
    """One transfer of the whole snapshot to numpy float32 (ints stay ints), with the
    host-side metrics added (see ``add_host_metrics``)."""
    return add_host_metrics({k: np.asarray(v) for k, v in jax.device_get(snap).items()})


def add_host_metrics(host: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add ``sliced_w1`` (fake vs real) to a snapshot already on the host."""
    fake, real = host["fake"], host["real"]
    ok = np.isfinite(fake).all()
    host["sliced_w1"] = np.float32(metrics.sliced_w1(fake, real) if ok else np.nan)
    return host
