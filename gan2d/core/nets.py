"""MLPs on plain pytrees: ``init_mlp`` / ``apply_mlp``, and the GAN's two nets.

Parameters are lists of ``{"w", "b"}`` dicts. A mixture of several generators stacks
their parameters on a leading axis and maps over it with ``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gan2d.core.config import Config

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.2),
    "tanh": jnp.tanh,
}


def init_mlp(key, sizes: list[int]) -> list[dict]:
    """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights and biases (PyTorch's default)."""
    params = []
    for k, (fan_in, fan_out) in zip(
        jax.random.split(key, len(sizes) - 1), zip(sizes, sizes[1:], strict=False), strict=True
    ):
        kw, kb = jax.random.split(k)
        bound = 1.0 / jnp.sqrt(fan_in)
        params.append(
            {
                "w": jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound),
                "b": jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound),
            }
        )
    return params


def apply_mlp(params: list[dict], x, activation: str):
    act = ACTIVATIONS[activation]
    for layer in params[:-1]:
        x = act(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def generator_sizes(config: Config) -> list[int]:
    return [config.z_dim] + [config.width] * config.depth + [2]


def critic_in_dim(config: Config) -> int:
    return 2 * config.pack + (1 if config.minibatch_std else 0)


def critic_sizes(config: Config) -> list[int]:
    return [critic_in_dim(config)] + [config.width] * config.depth + [1]


def init_generator(key, config: Config):
    """One MLP, or ``n_generators`` MLPs stacked on a leading axis."""
    keys = jax.random.split(key, config.n_generators)
    return jax.vmap(lambda k: init_mlp(k, generator_sizes(config)))(keys)


def init_critic(key, config: Config):
    return init_mlp(key, critic_sizes(config))


def sample_latent(key, n: int, config: Config):
    if config.prior == "uniform":
        return jax.random.uniform(key, (n, config.z_dim), minval=-1.0, maxval=1.0)
    return jax.random.normal(key, (n, config.z_dim))


def generate(g_params, z, config: Config):
    """Map latents (n, z_dim) to points (n, 2). With several generators, sample i comes
    from generator i mod n_generators (MGAN-style equal mixture)."""
    n_gen = config.n_generators
    n = z.shape[0]
    if n_gen == 1:
        single = jax.tree_util.tree_map(lambda a: a[0], g_params)
        return apply_mlp(single, z, config.activation)
    per = -(-n // n_gen)  # ceil
    z_pad = jnp.concatenate([z, jnp.zeros((per * n_gen - n, z.shape[1]), z.dtype)])
    z_split = z_pad.reshape(per, n_gen, -1).transpose(1, 0, 2)
    out = jax.vmap(lambda p, zz: apply_mlp(p, zz, config.activation))(g_params, z_split)
    return out.transpose(1, 0, 2).reshape(per * n_gen, 2)[:n]


def pack_points(x, config: Config):
    """(n, 2) -> (n / pack, 2 * pack) [+ minibatch-std feature] for the critic (PacGAN)."""
    packed = x.reshape(x.shape[0] // config.pack, 2 * config.pack)
    if config.minibatch_std:
        feature = jnp.mean(jnp.std(x, axis=0)) * jnp.ones((packed.shape[0], 1), x.dtype)
        packed = jnp.concatenate([packed, feature], axis=1)
    return packed


def critic(d_params, x, config: Config):
    """Critic scores (n / pack,) of points (n, 2)."""
    return apply_mlp(d_params, pack_points(x, config), config.activation)[:, 0]


def critic_pointwise(d_params, x, config: Config, reference=None):
    """Score each point alone, as the critic would a pack of copies of it.

    With the minibatch-std feature the feature comes from ``reference`` (a batch of
    fakes), so the map shows what the critic says about one point in that company.
    """
    packed = jnp.tile(x, (1, config.pack))
    if config.minibatch_std:
        ref = x if reference is None else reference
        feature = jnp.mean(jnp.std(ref, axis=0)) * jnp.ones((x.shape[0], 1), x.dtype)
        packed = jnp.concatenate([packed, feature], axis=1)
    return apply_mlp(d_params, packed, config.activation)[:, 0]
