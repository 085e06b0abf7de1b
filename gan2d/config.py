"""The run configuration: one frozen dataclass of plain values.

A ``Config`` is hashable (its static part keys the compile cache), validates itself
with messages that name the field, the bad value and the allowed range, and round-trips
through a flat ``dict[str, str]`` — the form used by the URL query and ``--set``.

Fields split in two kinds. *Static* fields change shapes or code (loss, widths,
unrolled steps...): changing one builds another XLA program. *Data* fields (learning
rates, penalty weights, noise...) travel inside the training state as float32 scalars,
so a slider can change them between chunks with no recompile and no reset.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

DATASETS = ("ring8", "grid25", "spiral", "moons", "swissroll", "checkerboard", "custom")
DATASET_DEFAULT_STD = {
    "ring8": 0.02,
    "grid25": 0.05,
    "spiral": 0.05,
    "moons": 0.05,
    "swissroll": 0.05,
    "checkerboard": 0.0,
    "custom": 0.02,
}
LOSSES = ("minimax", "ns", "wgan", "wgan-gp", "lsgan", "hinge")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
ACTIVATIONS = ("relu", "leaky_relu", "tanh")
PRIORS = ("gaussian", "uniform")


def _choice(options: tuple[str, ...]) -> dict[str, Any]:
    return {"choices": options}


def _range(lo: float, hi: float, *, integer: bool = False, open_lo: bool = False) -> dict:
    return {"lo": lo, "hi": hi, "integer": integer, "open_lo": open_lo}


def _f(default, doc: str, *, static: bool, **spec) -> Any:
    return field(default=default, metadata={"doc": doc, "static": static, **spec})


@dataclass(frozen=True)
class Config:
    """Everything that defines a run. Field names are the public names used by
    ``--set``, the URL query and the app's controls."""

    # data
    dataset: str = _f("ring8", "toy distribution", static=True, **_choice(DATASETS))
    data_std: float = _f(
        0.02, "std of each mode (noise for curves)", static=False, **_range(0.0, 1.0)
    )
    n_modes: int = _f(
        8, "number of Gaussians on the ring (ring8)", static=True, **_range(2, 64, integer=True)
    )
    radius: float = _f(2.0, "ring radius (ring8)", static=False, **_range(0.1, 10.0, open_lo=True))
    custom_path: str = _f("", "CSV/NPY file of 2D points (dataset=custom)", static=True)
    # losses and regularisers
    loss: str = _f("ns", "GAN objective", static=True, **_choice(LOSSES))
    gp_weight: float = _f(
        0.1, "gradient-penalty weight (wgan-gp)", static=False, **_range(0.0, 1000.0)
    )
    r1_weight: float = _f(
        0.0, "R1 penalty weight on real data (0 = off)", static=False, **_range(0.0, 1000.0)
    )
    clip: float = _f(
        0.01, "critic weight clip (wgan)", static=False, **_range(0.0, 10.0, open_lo=True)
    )
    label_smoothing: float = _f(
        0.0, "one-sided: real target is 1 - s (minimax, ns)", static=False, **_range(0.0, 0.5)
    )
    instance_noise: float = _f(
        0.0, "std of noise added to critic inputs", static=False, **_range(0.0, 5.0)
    )
    noise_decay_steps: int = _f(
        0,
        "steps over which instance noise decays to 0 (0 = never)",
        static=False,
        **_range(0, 10_000_000, integer=True),
    )
    pack: int = _f(
        1, "samples per critic input (PacGAN)", static=True, **_range(1, 8, integer=True)
    )
    minibatch_std: bool = _f(False, "append minibatch std feature to critic input", static=True)
    # optimisation
    optimizer: str = _f("adam", "optimiser for both nets", static=True, **_choice(OPTIMIZERS))
    lr_g: float = _f(
        1e-4, "generator learning rate", static=False, **_range(0.0, 1.0, open_lo=True)
    )
    lr_d: float = _f(1e-4, "critic learning rate", static=False, **_range(0.0, 1.0, open_lo=True))
    beta1: float = _f(0.5, "Adam beta1 / SGD momentum", static=False, **_range(0.0, 0.999))
    beta2: float = _f(0.9, "Adam beta2 / RMSprop decay", static=False, **_range(0.0, 0.9999))
    lr_decay_steps: int = _f(
        0,
        "steps over which both LRs decay linearly to 10% (0 = off)",
        static=False,
        **_range(0, 10_000_000, integer=True),
    )
    d_steps: int = _f(
        1, "critic steps per generator step", static=True, **_range(1, 20, integer=True)
    )
    unrolled_steps: int = _f(
        0,
        "critic steps the generator looks ahead (Metz et al.)",
        static=True,
        **_range(0, 20, integer=True),
    )
    batch_size: int = _f(256, "samples per step", static=True, **_range(8, 8192, integer=True))
    ema: float = _f(
        0.0,
        "EMA decay of generator weights for evaluation (0 = off)",
        static=False,
        **_range(0.0, 0.9999),
    )
    # models
    z_dim: int = _f(2, "latent dimension", static=True, **_range(1, 256, integer=True))
    prior: str = _f("gaussian", "latent prior", static=True, **_choice(PRIORS))
    width: int = _f(128, "hidden units per layer", static=True, **_range(4, 2048, integer=True))
    depth: int = _f(3, "hidden layers", static=True, **_range(1, 8, integer=True))
    activation: str = _f("leaky_relu", "hidden activation", static=True, **_choice(ACTIVATIONS))
    n_generators: int = _f(
        1, "generators in the mixture", static=True, **_range(1, 8, integer=True)
    )
    seed: int = _f(
        0, "PRNG seed for init and training", static=False, **_range(0, 2**31 - 1, integer=True)
    )

    # ------------------------------------------------------------------ validation
    def validate(self) -> Config:
        """Raise ``ValueError`` naming the field, the value and what is allowed."""
        for f in fields(self):
            value = getattr(self, f.name)
            meta = f.metadata
            if "choices" in meta and value not in meta["choices"]:
                raise ValueError(
                    f"{f.name}={value!r} is not allowed; choose one of {', '.join(meta['choices'])}"
                )
            if "lo" in meta:
                lo, hi = meta["lo"], meta["hi"]
                bad = not isinstance(value, int | float) or isinstance(value, bool)
                if not bad:
                    bad = (
                        not math.isfinite(value)
                        or value > hi
                        or value < lo
                        or (meta["open_lo"] and value <= lo)
                    )
                if bad:
                    op = "<" if meta["open_lo"] else "<="
                    raise ValueError(
                        f"{f.name}={value!r} is out of range; need {lo} {op} {f.name} <= {hi}"
                    )
        if self.dataset == "custom" and not self.custom_path:
            raise ValueError("dataset=custom needs custom_path=FILE (a CSV or .npy of 2D points)")
        for name in ("pack", "n_generators"):
            if self.batch_size % getattr(self, name):
                raise ValueError(
                    f"batch_size={self.batch_size} must be a multiple of "
                    f"{name}={getattr(self, name)}"
                )
        return self

    # ------------------------------------------------------------------ split
    def static_key(self) -> tuple:
        """The part of the config that changes code or shapes: keys the compile cache."""
        key = tuple(getattr(self, f.name) for f in fields(self) if f.metadata["static"])
        # regularisers cost a second backward pass, so they are compiled in only when on
        return key + (self.r1_weight > 0, self.instance_noise > 0)

    def hparams(self) -> dict[str, float]:
        """The data part: float32 scalars carried in the training state."""
        return {
            f.name: float(getattr(self, f.name))
            for f in fields(self)
            if not f.metadata["static"] and f.name != "seed"
        }

    # ------------------------------------------------------------------ round trip
    def to_dict(self, *, only_changed: bool = False) -> dict[str, str]:
        """Flat dict of strings. ``only_changed`` keeps the fields that differ from
        the defaults (short URLs)."""
        default = Config()
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if only_changed and value == getattr(default, f.name):
                continue
            out[f.name] = format_value(value)
        return out

    @classmethod
    def from_dict(cls, flat: dict[str, str], base: Config | None = None) -> Config:
        """Parse a flat dict of strings onto ``base`` (default: the defaults).

        Setting ``dataset`` without ``data_std`` also sets that dataset's usual std,
        so ``--set dataset=grid25`` follows the published protocol.
        """
        base = base or cls()
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in flat.items():
            if key not in types:
                raise ValueError(
                    f"unknown setting {key!r}; known settings: {', '.join(sorted(types))}"
                )
            values[key] = parse_value(key, types[key], raw)
        if "dataset" in values and "data_std" not in values:
            values["data_std"] = DATASET_DEFAULT_STD.get(values["dataset"], base.data_std)
        return replace(base, **values).validate()

    def with_changes(self, **changes) -> Config:
        return replace(self, **changes).validate()


def field_doc(name: str) -> str:
    return {f.name: f.metadata["doc"] for f in fields(Config)}[name]


def field_spec(name: str) -> dict[str, Any]:
    """Metadata of one field: doc, static flag, and choices or range."""
    return dict({f.name: f.metadata for f in fields(Config)}[name])


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_value(key: str, type_name: str, raw: str) -> Any:
    """Parse one string for field ``key``; ``ValueError`` says what was expected."""
    raw = str(raw).strip()
    if type_name == "bool":
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key}={raw!r} is not a boolean; use true or false")
    if type_name == "int":
        try:
            as_float = float(raw)
        except ValueError:
            raise ValueError(f"{key}={raw!r} is not a whole number") from None
        if not as_float.is_integer():
            raise ValueError(f"{key}={raw!r} is not a whole number")
        return int(as_float)
    if type_name == "float":
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{key}={raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{key}={raw!r} is not a finite number")
        return value
    return raw


def parse_sets(items: list[str]) -> dict[str, str]:
    """``["lr_d=1e-3", "loss=ns"]`` -> ``{"lr_d": "1e-3", "loss": "ns"}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


# ---------------------------------------------------------------------- presets
@dataclass(frozen=True)
class Preset:
    """A named config with the number of steps it is meant for and what to watch."""

    name: str
    config: Config
    steps: int
    summary: str
    watch: str


def _preset(name, steps, summary, watch, **changes) -> Preset:
    return Preset(name, Config(**changes).validate(), steps, summary, watch)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        _preset(
            "vanilla-collapse",
            3000,
            "The original minimax GAN with plain SGD: it collapses onto one mode.",
            "Watch the fakes abandon one mode after another until nearly all sit on one: "
            "HQ stays near 99% while modes covered falls to 1. Try unrolled_steps=5.",
            loss="minimax",
            optimizer="sgd",
            beta1=0.0,
            lr_g=0.05,
            lr_d=0.05,
            width=128,
            depth=2,
            z_dim=2,
            activation="relu",
        ),
        _preset(
            "vanishing-gradients",
            3000,
            "Saturating minimax loss against a strong critic: the generator's gradient dies.",
            "Watch G's gradient norm (log scale) fall by orders of magnitude while the "
            "critic wins; the fakes stop moving. Switch loss to ns and they move again.",
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
            "Watch all eight modes fill in; points strung between modes show where "
            "precision is still poor.",
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
            "away. All eight modes fill in within seconds.",
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
            loss="lsgan",
            lr_g=1e-4,
            lr_d=1e-4,
        ),
        _preset(
            "hinge",
            6000,
            "Hinge loss (Lim & Ye 2017; used by SN-GAN and BigGAN).",
            "Watch the critic map flatten where it is already confident (margin 1).",
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
            "on the arcs between modes: HQ passes 95%.",
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


def config_fields() -> list[dataclasses.Field]:
    return list(fields(Config))
