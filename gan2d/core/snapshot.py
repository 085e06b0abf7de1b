"""What a run looks like now, computed on device in one call for a batch of runs.

``take(runs, state, key, extent)`` returns, per run, small float32 arrays: fake and
real samples, the critic on a square grid, the direction the generator's loss pushes
each fake point and each point of a coarse grid, the generator's image of a latent grid
(its manifold), per-point critic outputs for the histograms, and the live mode metrics.
The sliced W1 of fake vs real is added on the host with numpy (on a CPU, XLA's sort
would double the snapshot's cost). The app draws these; nothing in the core needs them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gan2d.core import data, metrics, nets
from gan2d.core.config import Config
from gan2d.core.runs import Packing, Runs, state_packing
from gan2d.core.train import make_train


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


@functools.lru_cache(maxsize=64)
def snapshot_fn(static: Config, res: Resolution):
    """``snapshot(state, key, extent) -> dict`` of one run of static config ``static``."""
    train = make_train(static)
    objective = train.objective
    sampler = data.make_sampler(static)
    means = data.mode_means(static)
    means = None if means is None else jnp.asarray(means, jnp.float32)

    def push(d, x, reference):
        # the direction that lowers each point's generator loss: where G moves it
        def total(p):
            return p.shape[0] * objective.generator_loss(train.critic_scores(d, p, reference))

        return -jax.grad(total)(x)

    def snapshot(state, key, extent):
        k_z, k_real = jax.random.split(key)
        g, d, hp = state["g"], state["d"], state["hp"]
        fake = train.generate(g, nets.sample_latent(k_z, res.samples, static))
        real = sampler(k_real, res.samples, hp)
        grid = square_grid(extent, res.grid)
        arrows_at = square_grid(extent * (1 - 1 / res.arrows), res.arrows)
        critic = objective.as_output(train.critic_scores(d, grid, fake))
        out = {
            "fake": fake,
            "real": real,
            "critic": critic.reshape(res.grid, res.grid),
            "arrow_xy": arrows_at,
            "arrow_uv": push(d, arrows_at, fake),
            "fake_uv": push(d, fake, fake),
            "d_real_values": objective.as_output(train.critic_scores(d, real, fake)),
            "d_fake_values": objective.as_output(train.critic_scores(d, fake, fake)),
            "manifold": train.generate(g, latent_grid(static, res.manifold)),
            "step": state["step"],
        }
        if means is not None:
            live_means = means
            if static.dataset == "ring8":  # radius is data: rescale the default ring
                live_means = means * (hp["radius"] / static.radius)
            m = metrics.mode_metrics_jax(fake, live_means, hp["data_std"])
            out.update({f"live_{k}": v for k, v in m.items()})
        return out

    return snapshot


@functools.lru_cache(maxsize=64)
def _out_packing(static: Config, res: Resolution) -> Packing:
    one = state_packing(static).shapes
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    extent = jax.ShapeDtypeStruct((), jnp.float32)
    return Packing(jax.eval_shape(snapshot_fn(static, res), one, key, extent))


def _program(runs: Runs, res: Resolution):
    """The snapshot of packed states (``Runs.pack``), packed: a program call and a
    transfer of a few arrays, not of ~90 in and 15 out."""

    def example():
        keys = jax.ShapeDtypeStruct((runs.padded, 2), jnp.uint32)
        extents = jax.ShapeDtypeStruct((runs.padded,), jnp.float32)
        return runs.packing().shaped(runs.padded), keys, extents

    def make():
        state_p, out_p = runs.packing(), _out_packing(runs.static, res)
        snapshot = snapshot_fn(runs.static, res)
        return lambda packed, key, extent: out_p.pack(snapshot(state_p.unpack(packed), key, extent))

    return runs.compiled("snapshot", make, example, extra=(res,))


def prepare(runs: Runs, res: Resolution = Resolution()) -> None:
    """Compile the snapshot of these runs (and their init) now, if not yet, without
    taking one."""
    runs.prepare_init()
    _program(runs, res)


@functools.lru_cache(maxsize=64)
def _arguments(sharding, padded: int, key: bytes, extent: float) -> tuple:
    """The key and view of every run, on the device: a lab's are the same every frame."""
    # built with numpy: eager jax.numpy calls cost a dispatch each
    keys = np.broadcast_to(np.frombuffer(key, np.uint32), (padded, 2))
    extents = np.full((padded,), extent, np.float32)
    return jax.device_put((keys, extents), sharding)


def take(runs: Runs, state, key, extent: float, res: Resolution = Resolution()) -> list[dict]:
    """Snapshots of every run of ``state`` (a state, or packed: ``Runs.pack``) on the
    host: one device call, one transfer per dtype.

    Every run is drawn with the same ``key`` and view ``extent``; the host metrics
    (``add_host_metrics``) are added. Each array is the run's own (a copy)."""
    if isinstance(state, dict):
        state = runs.pack(state)
    key = np.asarray(key, np.uint32)
    args = _arguments(runs.sharding, runs.padded, key.tobytes(), float(extent))
    host = _out_packing(runs.static, res).fetch(_program(runs, res)(state, *args))
    return [
        add_host_metrics({k: np.array(v[i]) for k, v in host.items()}) for i in range(runs.size)
    ]


def is_compiled(runs: Runs, res: Resolution = Resolution()) -> bool:
    """Whether ``take`` for these runs would not wait for a compile."""
    return runs.has_program("snapshot", res)


def add_host_metrics(host: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add ``sliced_w1`` (fake vs real) to a snapshot already on the host."""
    fake, real = host["fake"], host["real"]
    ok = np.isfinite(fake).all()
    host["sliced_w1"] = np.float32(metrics.sliced_w1(fake, real) if ok else np.nan)
    return host
