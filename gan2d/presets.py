"""Named starting points: every failure the GAN literature names, and every fix.

A ``Preset`` is a validated ``Config`` with the number of steps it is meant for, a
one-line summary and what to watch. ``live_config`` is the one rule for the size a
preset trains at when someone watches it live: on a CPU-only machine the networks and
the batch shrink so frames keep flowing; on a GPU the preset runs as written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import jax

from gan2d.core.config import Config


@dataclass(frozen=True)
class Preset:
    """A named config with the number of steps it is meant for and what to watch."""

    name: str
    config: Config
    steps: int
    summary: str
    watch: str
    speed: int  # steps per frame in the app: its promise shows within about 20 s


def _preset(name, steps, summary, watch, speed=20, **changes) -> Preset:
    return Preset(name, Config(**changes).validate(), steps, summary, watch, speed)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        _preset(
            "vanilla-collapse",
            10000,
            "The original GAN (non-saturating loss, plain SGD): it collapses onto one mode.",
            "Watch the fakes shrink into one clump that sits on a mode (HQ near 100%, "
            "modes covered 1) until the critic's colours turn against that spot, then "
            "jumps to another mode: over the run it visits several.",
            speed=50,
            loss="ns",
            optimizer="sgd",
            beta1=0.0,
            lr_g=0.2,
            lr_d=0.05,
            d_steps=3,
            data_std=0.05,
            width=128,
            depth=2,
            z_dim=1,
            prior="uniform",
            activation="relu",
        ),
        _preset(
            "vanishing-gradients",
            3000,
            "Saturating minimax loss against a strong critic: the generator's gradient dies.",
            "Watch G's gradient norm (log scale) fall by orders of magnitude while the "
            "critic wins; the fakes stop moving. Switch loss to ns and they move again.",
            speed=20,
            loss="minimax",
            lr_g=1e-4,
            lr_d=1e-3,
            d_steps=5,
            width=128,
            depth=3,
            activation="relu",
        ),
        _preset(
            "ns-gan",
            6000,
            "The non-saturating loss: the generator maximises log D(G(z)).",
            "Watch the modes fill in, all eight on most seeds and seven on some; points "
            "strung between modes show where precision is still poor.",
            speed=50,
            loss="ns",
            lr_g=1e-4,
            lr_d=1e-4,
        ),
        _preset(
            "wgan-clip",
            5000,
            "Wasserstein GAN with weight clipping (Arjovsky et al. 2017).",
            "Watch the critic's map: clipping makes it almost linear, so fakes drift "
            "slowly. Raise clip and watch it sharpen.",
            speed=20,
            loss="wgan",
            optimizer="rmsprop",
            lr_g=5e-4,
            lr_d=5e-4,
            d_steps=5,
            clip=0.05,
            beta2=0.9,
        ),
        _preset(
            "wgan-gp",
            4000,
            "WGAN with gradient penalty (Gulrajani et al. 2017): a smooth, useful critic.",
            "Watch the arrows: every fake point gets a clear push towards a mode, even far "
            "away. The modes fill in within seconds, all eight on most seeds and seven "
            "on some.",
            speed=20,
            loss="wgan-gp",
            gp_weight=1.0,
            d_steps=5,
            lr_g=3e-4,
            lr_d=3e-4,
            beta1=0.5,
            beta2=0.9,
        ),
        _preset(
            "unrolled",
            4000,
            "Unrolled GAN (Metz et al. 2017): G plays against the critic 5 steps ahead.",
            "The original minimax loss, but each generator step differentiates through 5 "
            "look-ahead critic updates, so parking on one mode does not pay.",
            speed=20,
            loss="minimax",
            unrolled_steps=5,
            lr_g=1e-4,
            lr_d=1e-4,
            beta1=0.5,
            beta2=0.999,
            width=128,
            depth=2,
            activation="relu",
        ),
        _preset(
            "lsgan",
            6000,
            "Least-squares GAN (Mao et al. 2017): squared error instead of log loss.",
            "Watch the critic map: its values are targets 0 and 1, and the gradient does "
            "not saturate far from the data.",
            speed=50,
            loss="lsgan",
            lr_g=1e-4,
            lr_d=1e-4,
        ),
        _preset(
            "hinge",
            6000,
            "Hinge loss (Lim & Ye 2017; used by SN-GAN and BigGAN).",
            "Watch the critic map flatten where it is already confident (margin 1).",
            speed=50,
            loss="hinge",
            lr_g=1e-4,
            lr_d=1e-4,
        ),
        _preset(
            "r1",
            6000,
            "Non-saturating loss with an R1 penalty on real data (Mescheder et al. 2018).",
            "Watch the critic map stay flat on the real modes: R1 stops the critic from "
            "overshooting, so training settles instead of oscillating.",
            speed=50,
            loss="ns",
            r1_weight=0.1,
            lr_g=1e-4,
            lr_d=1e-4,
        ),
        _preset(
            "best-ring8",
            10000,
            "Our best ring: a mixture of 8 tanh generators, NS loss, EMA of G, LR decay.",
            "Each of the 8 generators settles on its own mode, so almost no fake is left "
            "on the arcs between modes: the protocol's HQ (EMA generator) passes 95%; the "
            "live readout scores the raw generator and reads a little lower (82-95%).",
            speed=50,
            loss="ns",
            activation="tanh",
            n_generators=8,
            lr_g=3e-4,
            lr_d=3e-4,
            beta1=0.5,
            beta2=0.999,
            ema=0.999,
            lr_decay_steps=10000,
        ),
        _preset(
            "best-grid25",
            20000,
            "Our best grid: 5 tanh generators, NS loss, a minibatch-std critic, EMA, LR decay.",
            "Watch the generators split the grid between them. The critic also sees how "
            "spread out each batch is, a cue that a batch of fakes is missing modes.",
            speed=50,
            dataset="grid25",
            data_std=0.05,
            loss="ns",
            activation="tanh",
            n_generators=5,
            minibatch_std=True,
            batch_size=250,
            lr_g=7e-4,
            lr_d=1e-3,
            beta1=0.5,
            beta2=0.999,
            ema=0.999,
            lr_decay_steps=20000,
        ),
    ]
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


#: width and batch for live training on a CPU: the presets' 128 x batch 256 would leave
#: the app at a few frames per second there
LIVE_CPU_WIDTH = 64
LIVE_CPU_BATCH = 128


def live_config(config: Config, backend: str | None = None) -> Config:
    """``config`` at the size the app trains it live on ``backend`` (default: JAX's).

    On a CPU the width is at most ``LIVE_CPU_WIDTH`` and the batch ``LIVE_CPU_BATCH``,
    rounded down to a multiple of the generators in the mixture and of the pack (a
    5-generator preset gets batch 125); elsewhere the config is returned unchanged.
    The app records sizes in its links, so a link reproduces a run on either.
    """
    if (backend or jax.default_backend()) != "cpu":
        return config
    unit = math.lcm(config.pack, config.n_generators)
    batch = max(unit, LIVE_CPU_BATCH // unit * unit)
    return replace(config, width=min(config.width, LIVE_CPU_WIDTH), batch_size=batch).validate()
