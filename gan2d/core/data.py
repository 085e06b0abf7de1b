"""Toy 2D distributions as pure samplers.

``make_sampler(config)`` returns ``sample(key, n, hp) -> (n, 2)`` that runs on device
inside the jitted training step. ``hp`` carries ``data_std`` and ``radius`` as data,
so changing them needs no recompile. Mixtures with modes also expose their mode means
(``mode_means``) for the metric protocol (see ``gan2d.core.metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gan2d.core import points
from gan2d.core.config import Config

GRID25_MEANS = np.array([(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], float)


def ring_means(n_modes: int, radius: float) -> np.ndarray:
    """Means of a ring mixture: angles 2*pi*k/K on a circle of the given radius."""
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def mode_means(config: Config) -> np.ndarray | None:
    """Mode means of the config's dataset, or None where it has no discrete modes."""
    if config.dataset == "ring8":
        return ring_means(config.n_modes, config.radius)
    if config.dataset == "grid25":
        return GRID25_MEANS.copy()
    return None


def data_extent(config: Config) -> float:
    """Half-width of a square view that holds the data with a margin."""
    if config.dataset == "ring8":
        return 1.5 * config.radius + 0.5
    if config.dataset == "grid25":
        return 6.0
    if config.dataset == "custom":
        pts = load_points(config.custom_path)
        return float(np.abs(pts).max() * 1.25 + 0.25)
    return 3.0


def load_points(path: str) -> np.ndarray:
    """The 2D point cloud ``path`` names: a registered point set (``points:...``, see
    ``gan2d.core.points``) or a ``.npy`` or CSV file (two numeric columns, header
    optional). ``PointsError`` (a ``ValueError``) says what is wrong."""
    if points.is_point_set(path):
        return points.lookup(path)
    name = f"custom_path={path!r}"
    file = Path(path)
    if not file.is_file():
        raise points.PointsError(f"{name}: no such file")
    try:
        size = file.stat().st_size
        if size > points.MAX_BYTES:
            raise points.too_big(name, size)
        with file.open("rb") as handle:
            raw = handle.read(points.MAX_BYTES + 1)  # a file that grew is still refused
    except OSError as err:
        raise points.PointsError(f"{name}: cannot be read ({err.strerror})") from None
    return points.parse_points(raw, name=name)


# ---------------------------------------------------------------- samplers
# Each takes (key, n, std, radius) and returns (n, 2) float32.


def _ring(n_modes: int):
    def sample(key, n, std, radius):
        k_mode, k_noise = jax.random.split(key)
        idx = jax.random.randint(k_mode, (n,), 0, n_modes)
        angle = 2 * jnp.pi * idx / n_modes
        means = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
        return means + std * jax.random.normal(k_noise, (n, 2))

    return sample


def _grid25(key, n, std, radius):
    k_mode, k_noise = jax.random.split(key)
    means = jnp.asarray(GRID25_MEANS, jnp.float32)
    idx = jax.random.randint(k_mode, (n,), 0, len(GRID25_MEANS))
    return means[idx] + std * jax.random.normal(k_noise, (n, 2))


def _spiral(key, n, std, radius):
    """Two interleaved arms of an Archimedean spiral, scaled to about [-2.5, 2.5]."""
    k_t, k_arm, k_noise = jax.random.split(key, 3)
    t = jnp.sqrt(jax.random.uniform(k_t, (n,))) * 3 * jnp.pi
    arm = jnp.where(jax.random.bernoulli(k_arm, 0.5, (n,)), 1.0, -1.0)
    r = t / (3 * jnp.pi) * 2.5
    pts = arm[:, None] * jnp.stack([r * jnp.cos(t), r * jnp.sin(t)], axis=1)
    return pts + std * jax.random.normal(k_noise, (n, 2))


def _moons(key, n, std, radius):
    """Two interleaving half circles (as scikit-learn's make_moons), centred."""
    k_t, k_side, k_noise = jax.random.split(key, 3)
    t = jax.random.uniform(k_t, (n,)) * jnp.pi
    upper = jax.random.bernoulli(k_side, 0.5, (n,))
    x = jnp.where(upper, jnp.cos(t), 1 - jnp.cos(t)) - 0.5
    y = jnp.where(upper, jnp.sin(t), 0.5 - jnp.sin(t)) - 0.25
    return 1.5 * jnp.stack([x, y], axis=1) + std * jax.random.normal(k_noise, (n, 2))


def _swissroll(key, n, std, radius):
    """The 2D swiss roll (t cos t, t sin t), t in [1.5 pi, 4.5 pi], scaled by 1/6."""
    k_t, k_noise = jax.random.split(key)
    t = 1.5 * jnp.pi * (1 + 2 * jax.random.uniform(k_t, (n,)))
    pts = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=1) / 6.0
    return pts + std * jax.random.normal(k_noise, (n, 2))


def _checkerboard(key, n, std, radius):
    """Uniform on the dark squares of a 4x4 board covering [-2, 2]^2."""
    k_x, k_y, k_col, k_noise = jax.random.split(key, 4)
    x = jax.random.uniform(k_x, (n,), minval=-2.0, maxval=2.0)
    u = jax.random.uniform(k_y, (n,), minval=0.0, maxval=1.0)
    col = jax.random.randint(k_col, (n,), 0, 2)
    # rows of the dark square in x's column: parity of floor(x) + row index
    y = u + 2.0 * col - 2.0 + jnp.mod(jnp.floor(x) + 2, 2)
    return jnp.stack([x, y], axis=1) + std * jax.random.normal(k_noise, (n, 2))


def _custom(points: np.ndarray):
    pts = jnp.asarray(points, jnp.float32)

    def sample(key, n, std, radius):
        k_idx, k_noise = jax.random.split(key)
        idx = jax.random.randint(k_idx, (n,), 0, pts.shape[0])
        return pts[idx] + std * jax.random.normal(k_noise, (n, 2))

    return sample


def make_sampler(config: Config) -> Callable:
    """``sample(key, n, hp) -> (n, 2)``; ``hp`` is the dict from ``Config.hparams``."""
    if config.dataset == "ring8":
        base = _ring(config.n_modes)
    elif config.dataset == "custom":
        base = _custom(load_points(config.custom_path))
    else:
        base = {
            "grid25": _grid25,
            "spiral": _spiral,
            "moons": _moons,
            "swissroll": _swissroll,
            "checkerboard": _checkerboard,
        }[config.dataset]

    def sample(key, n, hp):
        return base(key, n, hp["data_std"], hp["radius"]).astype(jnp.float32)

    return sample


def sample_numpy(config: Config, n: int, seed: int) -> np.ndarray:
    """Draw ``n`` real samples on the host (for evaluation and tests)."""
    sampler = make_sampler(config)
    hp = {k: jnp.float32(v) for k, v in config.hparams().items()}
    return np.asarray(sampler(jax.random.PRNGKey(seed), n, hp), dtype=np.float64)


__all__ = [
    "GRID25_MEANS",
    "data_extent",
    "load_points",
    "make_sampler",
    "mode_means",
    "ring_means",
    "sample_numpy",
]
