"""Challenges: a run that fails, a few settings the student may change, and a target in
the protocol metrics to reach within a step budget.

A ``Challenge`` is data: its starting ``Config`` (at a fixed size, the size the app
trains live on a laptop, so that a result means the same on every machine), the
settings a student may change, its ``Goal``s and its budget. ``attempt`` trains a
student's config chunk by chunk and scores it by the protocol (``evaluate``, 2,500
samples, sliced W1: the W1 the lab shows) every ``CHECK_EVERY`` steps, stopping at the
first check that meets every goal. ``python -m gan2d challenge NAME`` runs it; the app
checks the same goals live and confirms them with the same ``attempt`` scoring.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import jax

from gan2d.core.config import Config
from gan2d.core.evaluate import evaluate
from gan2d.core.runs import group, run_state

#: steps between two protocol checks of a headless attempt
CHECK_EVERY = 250
#: a challenge's size: the app's live size on a CPU (``gan2d.presets.live_config``)
SIZE = {"width": 64, "batch_size": 128}

METRICS = {
    "modes": "modes covered",
    "hq": "HQ",
    "w1": "W1 (sliced)",
}
_OPS = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Goal:
    """One number to reach: ``metric`` (modes, hq or w1) ``op`` (>= or <=) ``value``."""

    metric: str
    op: str
    value: float

    def met(self, scores: dict) -> bool:
        got = scores.get(self.metric)
        return got is not None and _OPS[self.op](got, self.value)

    def __str__(self) -> str:
        value = f"{self.value:g}" + ("%" if self.metric == "hq" else "")
        return f"{METRICS[self.metric]} {'≥' if self.op == '>=' else '≤'} {value}"


@dataclass(frozen=True)
class Challenge:
    name: str
    title: str
    task: str  # what is wrong with the start, in a sentence or two
    preset: str  # the preset nearest to the start (its text and colours in the app)
    config: Config  # the starting settings, which fail
    allowed: tuple[str, ...]  # the settings a student may change (and the seed)
    goals: tuple[Goal, ...]
    budget: int  # steps
    solution: dict[str, str]  # one set of changes that passes (tests check it)
    hint: str = ""
    speed: int = 20  # steps per frame in the app

    @property
    def target(self) -> str:
        return " and ".join(map(str, self.goals)) + f" within {self.budget:,} steps"

    def locked(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` a student may not change: all but ``allowed`` and the seed."""
        return [name for name in names if name not in (*self.allowed, "seed")]

    def check_settings(self, config: Config) -> list[str]:
        """The settings in which ``config`` leaves the start outside ``allowed``."""
        return [
            name
            for name in self.locked(f.name for f in fields(Config))
            if getattr(config, name) != getattr(self.config, name)
        ]

    def student_config(self, changes: dict[str, str]) -> Config:
        """The start with a student's changes; a locked setting is refused by name."""
        locked = sorted(self.locked(changes))
        if locked:
            raise ValueError(
                f"challenge {self.name} lets you change only {', '.join(self.allowed)} "
                f"(and seed), not {', '.join(locked)}"
            )
        return Config.from_dict(changes, base=self.config)

    def met(self, scores: dict) -> bool:
        return not scores.get("diverged") and all(g.met(scores) for g in self.goals)


def _challenge(name, title, task, preset, start, allowed, goals, budget, solution, **kw):
    config = Config(**{**SIZE, **start}).validate()
    goals = tuple(Goal(*g) for g in goals)
    for g in goals:
        if g.metric not in METRICS or g.op not in _OPS:
            raise ValueError(f"challenge {name}: bad goal {g}")
    return Challenge(
        name, title, task, preset, config, tuple(allowed), goals, budget, solution, **kw
    )


_COLLAPSE = dict(
    loss="minimax",
    optimizer="sgd",
    beta1=0.0,
    lr_g=0.05,
    lr_d=0.05,
    depth=2,
    activation="relu",
)

CHALLENGES: dict[str, Challenge] = {
    c.name: c
    for c in [
        _challenge(
            "sgd-cover",
            "Cover the ring with minimax and SGD",
            "The original minimax GAN with plain SGD at a large step collapses onto one or "
            "two spots. Keep the loss and the optimiser; find learning rates or a look-ahead "
            "that spread the fakes over the ring.",
            "vanilla-collapse",
            _COLLAPSE,
            ("lr_g", "lr_d", "unrolled_steps", "d_steps", "pack"),
            [("modes", ">=", 8), ("w1", "<=", 0.25)],
            4000,
            {"lr_g": "0.01", "lr_d": "0.01"},
            hint="A smaller step for both players is the first thing to try.",
        ),
        _challenge(
            "clip-w1",
            "Weight clipping that lets the critic see",
            "WGAN with a clip of 0.001: the critic's weights are so small that it is "
            "almost flat, and the fakes barely move. Make it reach the data.",
            "wgan-clip",
            dict(
                loss="wgan",
                optimizer="rmsprop",
                lr_g=5e-4,
                lr_d=5e-4,
                d_steps=5,
                clip=0.001,
                beta2=0.9,
            ),
            ("clip", "lr_g", "lr_d", "d_steps"),
            [("w1", "<=", 0.2)],
            3000,
            {"clip": "0.1"},
            hint="The clip bounds the critic's slope: too small and it says nothing.",
        ),
        _challenge(
            "wake-the-generator",
            "Wake the generator up",
            "The saturating minimax loss against a critic that trains five times per "
            "generator step: D(G(z)) is near 0 and the generator's gradient has died. "
            "Find a loss (and a critic) that keeps the generator learning.",
            "vanishing-gradients",
            dict(loss="minimax", lr_g=1e-4, lr_d=1e-3, d_steps=5, depth=3, activation="relu"),
            ("loss", "lr_d", "d_steps"),
            [("w1", "<=", 0.3)],
            3000,
            {"loss": "wgan-gp"},
            hint="The non-saturating loss wakes it, but here it collapses onto a mode or "
            "two; which critic keeps a slope towards every mode?",
        ),
        _challenge(
            "penalty-weight",
            "A gradient penalty that is not too strong",
            "WGAN-GP with a penalty weight of 100: the critic spends all its effort keeping "
            "its slope at 1 and gives the generator a blurred signal.",
            "wgan-gp",
            dict(loss="wgan-gp", gp_weight=100.0, d_steps=5, lr_g=3e-4, lr_d=3e-4, beta1=0.5),
            ("gp_weight", "d_steps"),
            [("modes", ">=", 8), ("w1", "<=", 0.15)],
            3000,
            {"gp_weight": "1"},
        ),
        _challenge(
            "two-timescales",
            "Two learning rates",
            "The non-saturating loss, but the critic learns a hundred times slower than the "
            "generator: the generator chases a critic that cannot keep up.",
            "ns-gan",
            dict(loss="ns", lr_g=1e-3, lr_d=1e-5),
            ("lr_g", "lr_d"),
            [("modes", ">=", 8), ("w1", "<=", 0.25)],
            4000,
            {"lr_g": "1e-4", "lr_d": "1e-4"},
            hint="The critic must keep up with the generator it judges.",
        ),
        _challenge(
            "grid25",
            "All 25 modes of the grid",
            "On the 5 x 5 grid a non-saturating GAN with large steps finds most modes and "
            "keeps missing a few, with many fakes between them.",
            "best-grid25",
            dict(dataset="grid25", data_std=0.05, loss="ns", lr_g=1e-3, lr_d=1e-3),
            ("loss", "lr_g", "lr_d", "gp_weight", "d_steps", "beta1", "beta2", "activation"),
            [("modes", ">=", 25)],
            5000,
            {"loss": "wgan-gp", "gp_weight": "1", "d_steps": "5", "lr_g": "1e-3", "lr_d": "1e-3"},
        ),
        _challenge(
            "spiral",
            "A network big enough for the spiral",
            "A generator with one hidden layer of 16 units cannot bend its sheet of points "
            "into a spiral.",
            "wgan-gp",
            dict(
                dataset="spiral",
                data_std=0.05,
                loss="wgan-gp",
                gp_weight=1.0,
                d_steps=5,
                lr_g=3e-4,
                lr_d=3e-4,
                beta1=0.5,
                width=16,
                depth=1,
            ),
            ("width", "depth", "activation", "lr_g", "lr_d"),
            [("w1", "<=", 0.15)],
            4000,
            {"width": "64", "depth": "3"},
        ),
        _challenge(
            "unroll-it",
            "Look ahead to stop the rotation",
            "Minimax with Adam, a fast generator and a slow critic: the fakes settle on a "
            "mode, and move on when the critic catches up, never covering the ring.",
            "unrolled",
            dict(
                loss="minimax",
                lr_g=1e-3,
                lr_d=1e-4,
                beta1=0.5,
                beta2=0.999,
                depth=2,
                activation="relu",
            ),
            ("unrolled_steps", "pack", "label_smoothing", "instance_noise"),
            [("modes", ">=", 8)],
            4000,
            {"unrolled_steps": "5"},
        ),
    ]
}


def get_challenge(name: str) -> Challenge:
    if name not in CHALLENGES:
        raise ValueError(f"unknown challenge {name!r}; choose one of {', '.join(CHALLENGES)}")
    return CHALLENGES[name]


@dataclass
class Attempt:
    passed: bool
    steps: int  # the step of the check that passed, or the budget
    got: dict = field(default_factory=dict)  # the protocol scores at that check


def score(config: Config, state) -> dict:
    """The protocol scores a challenge reads (modes, hq, w1 sliced, diverged)."""
    result = evaluate(config, state, w1="sliced").metrics
    return {k: result.get(k) for k in ("modes", "hq", "w1", "diverged")}


def attempt(challenge: Challenge, config: Config, check_every: int = CHECK_EVERY) -> Attempt:
    """Train ``config`` up to the challenge's budget, scoring it every ``check_every``
    steps; stop at the first check that meets the goals."""
    return attempts(challenge, [config], check_every)[0]


def attempts(
    challenge: Challenge, configs: list[Config], check_every: int = CHECK_EVERY
) -> list[Attempt]:
    """``attempt`` for several configs at once: those that share a program train
    together (vmapped), each scored and stopped as ``attempt`` would."""
    results: list[Attempt | None] = [None] * len(configs)
    for idx, runs in group(configs):
        runs.prepare(check_every)
        state = runs.init()
        done = 0
        while done < challenge.budget and any(results[i] is None for i in idx):
            n = min(check_every, challenge.budget - done)
            runs.prepare(n)
            state, _ = runs.chunk(state, n)
            done += n
            for j, i in enumerate(idx):
                if results[i] is not None:
                    continue
                got = score(configs[i], jax.block_until_ready(run_state(state, j)))
                if got["diverged"] or challenge.met(got) or done >= challenge.budget:
                    results[i] = Attempt(challenge.met(got), done, got)
    return results
