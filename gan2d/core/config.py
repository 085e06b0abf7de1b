"""The run configuration: one frozen dataclass of plain values.

A ``Config`` is hashable (its static part keys the compile cache), validates itself
with messages that name the field, the bad value and the allowed range, and round-trips
through a flat ``dict[str, str]``: the form used by the URL query and ``--set``.

Fields split in two kinds. *Static* fields change shapes or code (loss, widths,
unrolled steps...): changing one builds another XLA program. *Data* fields (learning
rates, penalty weights, noise...) travel inside the training state as float32 scalars,
so a slider can change them between chunks with no recompile and no reset.
``static_part()`` is the one definition of what a program depends on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from gan2d.core import spec
from gan2d.core.spec import Spec, format_value

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
#: losses whose critic outputs a logit, read as D(x) = sigmoid(score), a probability
LOG_LOSSES = ("minimax", "ns")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
ACTIVATIONS = ("relu", "leaky_relu", "tanh")
PRIORS = ("gaussian", "uniform")
#: data fields whose on/off state is static: each costs a second backward pass, so it
#: is compiled in only when some run has it on (with weight 0 it adds exactly zero)
STATIC_FLAGS = ("r1_weight", "instance_noise")


def _f(default, setting: Spec, *, static: bool) -> Any:
    return field(default=default, metadata={"spec": setting, "static": static})


@dataclass(frozen=True)
class Config:
    """Everything that defines a run. Field names are the public names used by
    ``--set``, the URL query and the app's controls."""

    # data
    dataset: str = _f("ring8", spec.choice("toy distribution", DATASETS), static=True)
    data_std: float = _f(
        0.02, spec.real("std of each mode (noise for curves)", 0.0, 1.0), static=False
    )
    n_modes: int = _f(8, spec.whole("number of Gaussians on the ring (ring8)", 2, 64), static=True)
    radius: float = _f(2.0, spec.real("ring radius (ring8)", 0.1, 10.0, open_lo=True), static=False)
    custom_path: str = _f("", spec.text("CSV/NPY file of 2D points (dataset=custom)"), static=True)
    # losses and regularisers
    loss: str = _f("ns", spec.choice("GAN objective", LOSSES), static=True)
    gp_weight: float = _f(
        0.1, spec.real("gradient-penalty weight (wgan-gp)", 0.0, 1000.0), static=False
    )
    r1_weight: float = _f(
        0.0, spec.real("R1 penalty weight on real data (0 = off)", 0.0, 1000.0), static=False
    )
    clip: float = _f(
        0.01, spec.real("critic weight clip (wgan)", 0.0, 10.0, open_lo=True), static=False
    )
    label_smoothing: float = _f(
        0.0,
        spec.real("one-sided: real target is 1 - s (minimax, ns)", 0.0, 0.5),
        static=False,
    )
    instance_noise: float = _f(
        0.0, spec.real("std of noise added to critic inputs", 0.0, 5.0), static=False
    )
    noise_decay_steps: int = _f(
        0,
        spec.whole("steps over which instance noise decays to 0 (0 = never)", 0, 10_000_000),
        static=False,
    )
    pack: int = _f(1, spec.whole("samples per critic input (PacGAN)", 1, 8), static=True)
    minibatch_std: bool = _f(
        False, spec.flag("append minibatch std feature to critic input"), static=True
    )
    # optimisation
    optimizer: str = _f("adam", spec.choice("optimiser for both nets", OPTIMIZERS), static=True)
    lr_g: float = _f(
        1e-4, spec.real("generator learning rate", 0.0, 1.0, open_lo=True), static=False
    )
    lr_d: float = _f(1e-4, spec.real("critic learning rate", 0.0, 1.0, open_lo=True), static=False)
    beta1: float = _f(0.5, spec.real("Adam beta1 / SGD momentum", 0.0, 0.999), static=False)
    beta2: float = _f(0.9, spec.real("Adam beta2 / RMSprop decay", 0.0, 0.9999), static=False)
    lr_decay_steps: int = _f(
        0,
        spec.whole("steps over which both LRs decay linearly to 10% (0 = off)", 0, 10_000_000),
        static=False,
    )
    d_steps: int = _f(1, spec.whole("critic steps per generator step", 1, 20), static=True)
    unrolled_steps: int = _f(
        0,
        spec.whole("critic steps the generator looks ahead (Metz et al.)", 0, 20),
        static=True,
    )
    batch_size: int = _f(256, spec.whole("samples per step", 8, 8192), static=True)
    ema: float = _f(
        0.0,
        spec.real("EMA decay of generator weights for evaluation (0 = off)", 0.0, 0.9999),
        static=False,
    )
    # models
    z_dim: int = _f(2, spec.whole("latent dimension", 1, 256), static=True)
    prior: str = _f("gaussian", spec.choice("latent prior", PRIORS), static=True)
    width: int = _f(128, spec.whole("hidden units per layer", 4, 2048), static=True)
    depth: int = _f(3, spec.whole("hidden layers", 1, 8), static=True)
    activation: str = _f("leaky_relu", spec.choice("hidden activation", ACTIVATIONS), static=True)
    n_generators: int = _f(1, spec.whole("generators in the mixture", 1, 8), static=True)
    seed: int = _f(0, spec.whole("PRNG seed for init and training", 0, 2**31 - 1), static=False)

    # ------------------------------------------------------------------ validation
    def validate(self) -> Config:
        """Raise ``ValueError`` naming the field, the value and what is allowed."""
        for f in fields(self):
            f.metadata["spec"].check(f.name, getattr(self, f.name))
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
    def static_part(self) -> Config:
        """What a compiled program depends on: this config with every data field at its
        default, except that ``STATIC_FLAGS`` become 1 (on) or 0 (off). Two configs with
        equal static parts run in the same program; it keys the compile cache."""
        default = Config()
        changes = {name: getattr(default, name) for name in DATA_FIELDS}
        changes["seed"] = 0
        for name in STATIC_FLAGS:
            changes[name] = 1.0 if getattr(self, name) > 0 else 0.0
        return replace(self, **changes)

    def hparams(self) -> dict[str, float]:
        """The data part: float32 scalars carried in the training state."""
        return {name: float(getattr(self, name)) for name in DATA_FIELDS}

    # ------------------------------------------------------------------ round trip
    def to_dict(self, *, only_changed: bool = False) -> dict[str, str]:
        """Flat dict of strings. ``only_changed`` keeps the fields that differ from
        the defaults (short URLs)."""
        default = Config()
        return {
            f.name: format_value(getattr(self, f.name))
            for f in fields(self)
            if not (only_changed and getattr(self, f.name) == getattr(default, f.name))
        }

    @classmethod
    def from_dict(cls, flat: dict[str, str], base: Config | None = None) -> Config:
        """Parse a flat dict of strings onto ``base`` (default: the defaults).

        Setting ``dataset`` without ``data_std`` also sets that dataset's usual std,
        so ``--set dataset=grid25`` follows the published protocol.
        """
        base = base or cls()
        values: dict[str, Any] = {}
        for key, raw in flat.items():
            if key not in SPECS:
                raise ValueError(
                    f"unknown setting {key!r}; known settings: {', '.join(sorted(SPECS))}"
                )
            values[key] = SPECS[key].parse(key, raw)
        if "dataset" in values and "data_std" not in values:
            values["data_std"] = DATASET_DEFAULT_STD[values["dataset"]]
        return replace(base, **values).validate()

    def with_changes(self, **changes) -> Config:
        return replace(self, **changes).validate()


#: every field's Spec, by name
SPECS: dict[str, Spec] = {f.name: f.metadata["spec"] for f in fields(Config)}
#: the data fields (carried in the state as float32; ``seed`` starts a run instead)
DATA_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Config) if not f.metadata["static"] and f.name != "seed"
)


def is_static(name: str) -> bool:
    """Whether changing field ``name`` needs another compiled program."""
    return bool(next(f for f in fields(Config) if f.name == name).metadata["static"])


def field_names() -> tuple[str, ...]:
    return tuple(SPECS)
