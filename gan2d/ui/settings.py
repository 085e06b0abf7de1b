"""The lab's settings: one ``param.Parameterized`` built from the core's config fields,
and the URL query that mirrors it.

``LabSettings`` has one parameter per config field (types, ranges and choices come from
the field's ``Spec``, so they cannot drift from the core), plus the preset, the speed
and the hidden controls and plots. The lab's controls are widgets made from these
parameters. The URL holds the preset, the fields that differ from it, the speed and
the hidden flags (``hide=controls`` for a classroom link). Bad query values never
raise: they are skipped and reported as warnings.
"""

from __future__ import annotations

import dataclasses
import math

import param

from gan2d.challenges import CHALLENGES
from gan2d.core import points
from gan2d.core.config import DATASETS, SPECS, Config
from gan2d.lessons import LESSONS
from gan2d.presets import PRESETS, live_config
from gan2d.ui.share import valid_code

DEFAULT_PRESET = "wgan-gp"

# Controls, grouped as the sidebar shows them.
CONTROL_GROUPS: dict[str, tuple[str, ...]] = {
    "Data": ("dataset",),
    "Loss": (
        "loss",
        "gp_weight",
        "r1_weight",
        "clip",
        "label_smoothing",
        "instance_noise",
        "pack",
    ),
    "Optimiser": (
        "optimizer",
        "lr_g",
        "lr_d",
        "beta1",
        "beta2",
        "d_steps",
        "unrolled_steps",
    ),
    "Networks": ("batch_size", "width", "depth", "activation", "z_dim"),
    "Run": ("seed",),
}
CONTROL_FIELDS: tuple[str, ...] = tuple(n for group in CONTROL_GROUPS.values() for n in group)

# Values offered by the sliders. A value from a link that is not on the ladder is
# added to it, so every valid setting can be shown exactly.
LADDERS: dict[str, tuple] = {
    "lr_g": (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1),
    "lr_d": (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1),
    "beta1": (0.0, 0.5, 0.9, 0.95, 0.99),
    "beta2": (0.0, 0.5, 0.9, 0.99, 0.999),
    "gp_weight": (0.0, 0.01, 0.1, 1.0, 10.0, 100.0),
    "r1_weight": (0.0, 0.01, 0.1, 1.0, 10.0),
    "clip": (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0),
    "label_smoothing": (0.0, 0.1, 0.2, 0.3),
    "instance_noise": (0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0),
    "pack": (1, 2, 4, 8),
    "d_steps": (1, 2, 3, 5, 10),
    "unrolled_steps": (0, 1, 2, 3, 5, 8, 10),
    "batch_size": (32, 64, 128, 256, 512, 1024),
    "width": (16, 32, 64, 128, 256, 512),
    "depth": (1, 2, 3, 4, 5, 6),
    "z_dim": (1, 2, 4, 8, 16, 32),
}

# Steps per frame. Chunks run in pieces of 5 or 1 steps, so only two programs per
# static config are compiled, however the speed is set. Each preset has its own speed.
SPEEDS = (1, 2, 5, 10, 20, 50)

PLOTS = {
    "field": "Samples, critic and gradients",
    "manifold": "Generator manifold",
    "losses": "Losses",
    "grads": "Gradient norms",
    "modes": "Modes and HQ",
    "w1": "W1",
    "hist": "D(real) vs D(fake)",
}
# The dataset menu: the built-in ones, then the user's own points (drawn or uploaded).
# A link may name own points only as a point set this server holds in memory
# (``custom_path=points:...``); a file path on the server never comes from a link.
LAB_DATASETS = tuple(d for d in DATASETS if d != "custom")
DATASET_LABELS = {**{d: d for d in LAB_DATASETS}, "your points": "custom"}


def preset_config(name: str) -> Config:
    """The preset ``name`` at the size the lab trains it live (``live_config``)."""
    return live_config(PRESETS[name].config)


def _param_for(name: str, default):
    spec = SPECS[name]
    if name in LADDERS:
        # any valid value may come from a link: it joins the ladder (check_on_set=False)
        ladder = sorted(set(LADDERS[name]) | {default})
        return param.Selector(objects=ladder, default=default, check_on_set=False, doc=spec.doc)
    if name == "dataset":
        return param.Selector(objects=DATASET_LABELS, default=default, doc=spec.doc)
    if spec.kind == "choice":
        return param.Selector(objects=list(spec.choices), default=default, doc=spec.doc)
    if spec.kind == "bool":
        return param.Boolean(default=default, doc=spec.doc)
    if spec.kind == "text":
        return param.String(default=default, doc=spec.doc)
    if spec.kind == "int":
        return param.Integer(default=default, bounds=(spec.lo, spec.hi), doc=spec.doc)
    return param.Number(
        default=default,
        bounds=(spec.lo, spec.hi),
        inclusive_bounds=(not spec.open_lo, True),
        doc=spec.doc,
    )


def _settings_class() -> type[param.Parameterized]:
    base = preset_config(DEFAULT_PRESET)
    attrs = {name: _param_for(name, getattr(base, name)) for name in SPECS}
    attrs["preset"] = param.Selector(
        objects=list(PRESETS), default=DEFAULT_PRESET, doc="named starting point"
    )
    attrs["speed"] = param.Selector(
        objects=list(SPEEDS),
        default=PRESETS[DEFAULT_PRESET].speed,
        doc="training steps per frame",
    )
    attrs["hide"] = param.List(default=[], item_type=str, doc="hidden controls / plots")
    attrs["present"] = param.Boolean(default=False, doc="presenter view: large, for a projector")
    attrs["__doc__"] = "One parameter per config field, plus preset, speed and hidden items."
    return type("LabSettings", (param.Parameterized,), attrs)


LabSettings = _settings_class()


def settings_config(settings: param.Parameterized) -> Config:
    """The config the settings describe. Raises ValueError when it is not valid."""
    return Config(**{name: getattr(settings, name) for name in SPECS}).validate()


def config_values(config: Config) -> dict:
    """Parameter values of a config (for ``settings.param.update``)."""
    return {name: getattr(config, name) for name in SPECS}


# ---------------------------------------------------------------------- URL query
@dataclasses.dataclass(frozen=True)
class Base:
    """What a link starts from before its own settings: a preset, a lesson's step or a
    challenge's start (its config, speed and hidden items)."""

    preset: str
    config: Config
    speed: int
    hide: tuple[str, ...] = ()


def preset_base(preset: str) -> Base:
    return Base(preset, preset_config(preset), PRESETS[preset].speed)


def lesson_base(lesson: str, step: int) -> Base:
    """Step ``step`` (from 1) of a lesson."""
    s = LESSONS[lesson].steps[step - 1]
    config = Config.from_dict(dict(s.settings), base=preset_config(s.preset))
    return Base(s.preset, config, s.speed or PRESETS[s.preset].speed, tuple(s.hide))


def challenge_base(name: str) -> Base:
    """A challenge's start: the controls it locks are hidden."""
    c = CHALLENGES[name]
    return Base(c.preset, c.config, c.speed, tuple(c.locked(CONTROL_FIELDS)))


def query_base(
    lesson: str | None = None,
    step: int = 1,
    challenge: str | None = None,
    preset: str | None = None,
) -> Base:
    """Where a link starts: its lesson step, else its challenge, else its preset (the
    default one if it names none)."""
    if lesson:
        return lesson_base(lesson, step)
    if challenge:
        return challenge_base(challenge)
    return preset_base(preset or DEFAULT_PRESET)


@dataclasses.dataclass
class LabQuery:
    """What a URL query asks for, after validation."""

    preset: str
    config: Config
    speed: int
    hide: list[str]
    warnings: list[str]
    follow: str | None = None  # the code of a live shared run to watch
    present: bool = False  # the presenter view (``present=1``)
    lesson: str | None = None  # a lesson (``lesson=NAME``) and its step (``step=N``, from 1)
    step: int = 1
    challenge: str | None = None  # a challenge (``challenge=NAME``)


def hide_names() -> set[str]:
    return {"controls", *CONTROL_FIELDS, *PLOTS}


def _pop_flag(args: dict, name: str, warnings: list[str], hint: str) -> bool:
    if name not in args:
        return False
    raw = args.pop(name).strip().lower()
    if raw in ("1", "true", "yes", "0", "false", "no"):
        return raw in ("1", "true", "yes")
    warnings.append(f"{name}={raw!r}: {hint}")
    return False


def _pop_guide(args: dict, warnings: list[str]) -> tuple[str | None, int, str | None]:
    """The lesson and step, or the challenge, a query names (unknown names warned)."""
    lesson, step, challenge = None, 1, None
    if "lesson" in args:
        raw = args.pop("lesson").strip()
        if raw in LESSONS:
            lesson = raw
        else:
            warnings.append(f"lesson={raw!r} is unknown; choose one of {', '.join(LESSONS)}")
    if "step" in args:
        raw = args.pop("step").strip()
        n = len(LESSONS[lesson].steps) if lesson else 0
        if lesson is None:
            warnings.append(f"step={raw!r} needs a lesson; ignored")
        elif raw.isdigit() and 1 <= int(raw) <= n:
            step = int(raw)
        else:
            warnings.append(f"step={raw!r}: lesson {lesson} has steps 1 to {n}; showing step 1")
    if "challenge" in args:
        raw = args.pop("challenge").strip()
        if lesson is not None:
            warnings.append(f"challenge={raw!r} ignored: the link opens a lesson")
        elif raw in CHALLENGES:
            challenge = raw
        else:
            warnings.append(f"challenge={raw!r} is unknown; choose one of {', '.join(CHALLENGES)}")
    return lesson, step, challenge


def parse_query(args: dict[str, str]) -> LabQuery:
    """Read a URL query (already decoded to strings). Each bad value is skipped with a
    warning that names it; the rest applies. Never raises."""
    warnings: list[str] = []
    args = {str(k): str(v) for k, v in args.items()}
    follow = None
    if "follow" in args:
        raw = args.pop("follow")
        if valid_code(raw):
            follow = raw.strip().upper()
        else:
            warnings.append(f"follow={raw!r} is not a share code (6 letters and digits)")
    present = _pop_flag(args, "present", warnings, "use present=1 for the presenter view")
    lesson, step, challenge = _pop_guide(args, warnings)
    raw = args.pop("preset", None)
    known = raw if raw in PRESETS else None
    base = query_base(lesson, step, challenge, known)
    if raw is not None and known is None:
        warnings.append(
            f"preset={raw!r} is unknown; using {base.preset} (choose one of {', '.join(PRESETS)})"
        )
    preset = known or base.preset
    config = base.config if preset == base.preset else preset_config(preset)

    speed = base.speed
    if "speed" in args:
        raw = args.pop("speed")
        try:
            value = float(raw)
            if not value.is_integer() or int(value) not in SPEEDS:
                raise ValueError
            speed = int(value)
        except ValueError:
            warnings.append(
                f"speed={raw!r} is not allowed; choose one of {', '.join(map(str, SPEEDS))}"
            )

    hide: list[str] = list(base.hide)
    if "hide" in args:
        known, hide = hide_names(), []
        for item in filter(None, (s.strip() for s in args.pop("hide").split(","))):
            if item in known:
                if item not in hide:
                    hide.append(item)
            else:
                warnings.append(f"hide={item!r} is not a control or plot; ignored")

    field_names = {f.name for f in dataclasses.fields(Config)}
    if "custom_path" in args:  # own points: before the dataset that uses them
        raw = args.pop("custom_path")
        problem = _link_points_problem(raw)
        if problem:
            warnings.append(problem)
            if args.get("dataset") == "custom":
                args.pop("dataset")
        else:
            config = Config.from_dict({"custom_path": raw}, base=config)
    # dataset next: choosing a dataset also sets its usual std, which data_std may override
    for key, raw in sorted(args.items(), key=lambda kv: kv[0] != "dataset"):
        if key not in field_names:
            warnings.append(f"unknown setting {key!r} ignored")
            continue
        try:
            config = Config.from_dict({key: raw}, base=config)
        except ValueError as err:
            warnings.append(f"{err}; ignored")
    return LabQuery(preset, config, speed, hide, warnings, follow, present, lesson, step, challenge)


def _link_points_problem(raw: str) -> str | None:
    """Why a link's ``custom_path`` cannot be used (None when it can)."""
    if not points.is_point_set(raw):
        return f"custom_path={raw!r}: a link may name only points drawn or uploaded here; ignored"
    try:
        points.lookup(raw)
    except ValueError:
        return (
            f"the points of this link ({raw}) are gone: this server keeps drawn and uploaded "
            "points in memory only. Open the run's config file to bring them back."
        )
    return None


def make_query(
    preset: str,
    config: Config,
    speed: int,
    hide: list[str],
    present: bool = False,
    lesson: str | None = None,
    step: int = 1,
    challenge: str | None = None,
) -> dict[str, str]:
    """The shortest query that reproduces this run: the lesson and step or the
    challenge, the preset, the fields that differ from where those start, and speed /
    hidden items / the presenter view when they differ too."""
    query: dict[str, str] = {}
    if lesson:
        query.update(lesson=lesson, step=str(step))
    elif challenge:
        query["challenge"] = challenge
    base = query_base(lesson, step, challenge, preset)
    if preset != base.preset or not (lesson or challenge):
        query["preset"] = preset
    reference = base.config if preset == base.preset else preset_config(preset)
    for f in dataclasses.fields(Config):
        value = getattr(config, f.name)
        ref = getattr(reference, f.name)
        same = value == ref or (
            isinstance(value, float) and math.isclose(value, ref, rel_tol=1e-12, abs_tol=0.0)
        )
        if not same:
            query[f.name] = Config.to_dict(config)[f.name]
    if speed != base.speed:
        query["speed"] = str(speed)
    if set(hide) != set(base.hide):
        query["hide"] = ",".join(hide)
    if present:
        query["present"] = "1"
    return query
