"""``python -m gan2d theory KIND --set key=value``: one toy game, one JSON line.

``run_theory(kind, overrides)`` returns plain JSON data. In that output an infinite
value is the string "inf" (or "-inf") and a value that does not exist (NaN, a
derivative at a kink or of an infinite quantity) is None. Each game's settings are
declared as ``Spec``s, parsed and checked by the same code as a run's config.
"""

from __future__ import annotations

import math

import numpy as np

from gan2d.core import spec
from gan2d.core.spec import Spec
from gan2d.theory.games import (
    DIRAC_LOSSES,
    DIRAC_METHODS,
    DIRAC_REGS,
    DIVERGENCE_PAIRS,
    XY_METHODS,
    dirac_trajectory,
    distance_to_origin,
    kl_fits,
    path_length,
    shifted_divergences,
    xy_alternating_invariant,
    xy_trajectory,
)


def _json_float(value) -> float | str | None:
    """A float for JSON: finite as is, +-inf as "inf"/"-inf", NaN or None as None."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


MAX_STEPS = 100_000
_LR = spec.real("step size", 0.0, 2.0, open_lo=True)
_START = spec.real("start coordinate", -1e3, 1e3)
_WEIGHT = spec.real("weight", 0.0, 100.0)

#: kind -> key -> (Spec, default)
THEORY_KEYS: dict[str, dict[str, tuple[Spec, object]]] = {
    "xy": {
        "method": (spec.choice("update rule", XY_METHODS), "simultaneous"),
        "lr": (_LR, 0.1),
        "steps": (spec.whole("steps", 1, MAX_STEPS), 100),
        "x0": (_START, 1.0),
        "y0": (_START, 1.0),
        "gamma": (_WEIGHT, 1.0),
    },
    "dirac": {
        "method": (spec.choice("update rule", DIRAC_METHODS), "simultaneous"),
        "loss": (spec.choice("objective", DIRAC_LOSSES), "minimax"),
        "reg": (spec.choice("regulariser", DIRAC_REGS), "none"),
        "reg_weight": (_WEIGHT, 1.0),
        "gp_weight": (_WEIGHT, 1.0),
        "gp_target": (_WEIGHT, 1.0),
        "clip": (_WEIGHT, 0.0),
        "lr": (_LR, 0.1),
        "steps": (spec.whole("steps", 1, MAX_STEPS), 1000),
        "x0": (_START, 1.0),
        "y0": (_START, 1.0),
    },
    "divergences": {
        "kind": (spec.choice("pair of distributions", DIVERGENCE_PAIRS), "gaussians"),
        "shift": (spec.real("shift", -1e3, 1e3), 2.0),
        "sigma": (spec.real("Gaussian std", 1e-3, 1e3), 0.5),
    },
    "klfit": {
        "mode_mean": (spec.real("mode position", 0.0, 10.0, open_lo=True), 2.0),
        "mode_std": (spec.real("mode std", 0.05, 5.0), 0.5),
        "weight": (spec.real("weight of the right mode", 0.01, 0.99), 0.5),
        "start": (spec.real("start of the fit", -10.0, 10.0), 0.5),
    },
}


def parse_theory_overrides(kind: str, overrides: dict[str, str]) -> dict[str, object]:
    """Defaults for ``kind`` updated with validated ``--set key=value`` strings."""
    if kind not in THEORY_KEYS:
        raise ValueError(f"unknown theory kind {kind!r}; choose one of {', '.join(THEORY_KEYS)}")
    specs = THEORY_KEYS[kind]
    config = {key: default for key, (_, default) in specs.items()}
    for key, raw in overrides.items():
        if key not in specs:
            raise ValueError(
                f"unknown key {key!r} for theory {kind}; known keys: {', '.join(sorted(specs))}"
            )
        config[key] = specs[key][0].parse(key, raw)
    return config


def _trajectory_summary(points: np.ndarray, config: dict) -> dict:
    # Iterates are only non-finite after an overflow, so their distance is "inf".
    dist = np.nan_to_num(distance_to_origin(points), nan=np.inf)
    steps = len(points) - 1
    marks = sorted({round(i * steps / 10) for i in range(11)})
    finite = np.all(np.isfinite(points))
    return {
        "config": config,
        "initial_distance": _json_float(dist[0]),
        "final_distance": _json_float(dist[-1]),
        "final_point": [_json_float(v) for v in points[-1]],
        "min_distance": _json_float(np.min(dist)),
        "max_distance": _json_float(np.max(dist)),
        "n_points": int(len(points)),
        "path_length": _json_float(path_length(points)) if finite else "inf",
        "diverged": bool(not finite),
        "distance_at_steps": marks,
        "distance": [_json_float(dist[i]) for i in marks],
    }


def run_theory(kind: str, overrides: dict[str, str]) -> dict:
    """Run one theory experiment for `python -m gan2d theory KIND --set key=value ...`.

    kind: "xy", "dirac", "divergences" or "klfit"; overrides: raw strings by key. Raises
    ValueError naming the key, the bad value and what is allowed. Returns JSON-ready data
    (plain floats, ints, strs, lists): "inf" marks an infinite value, None a missing one.
    For xy and dirac, x0/y0 are the start (for dirac x0 = theta0, y0 = psi0) and
    distance[i] is the distance from (0, 0) after distance_at_steps[i] steps.
    """
    config = parse_theory_overrides(kind, overrides)
    result: dict = {"kind": kind}
    if kind == "xy":
        points = xy_trajectory(
            config["method"],
            config["lr"],
            config["steps"],
            config["x0"],
            config["y0"],
            gamma=config["gamma"],
        )
        result.update(_trajectory_summary(points, config))
        if config["method"] == "alternating":
            result["conserved_quantity"] = _json_float(
                xy_alternating_invariant(points[-1], config["lr"])
            )
    elif kind == "dirac":
        points = dirac_trajectory(
            loss=config["loss"],
            reg=config["reg"],
            method=config["method"],
            lr=config["lr"],
            steps=config["steps"],
            theta0=config["x0"],
            psi0=config["y0"],
            reg_weight=config["reg_weight"],
            gp_weight=config["gp_weight"],
            gp_target=config["gp_target"],
            clip=config["clip"],
        )
        result.update(_trajectory_summary(points, config))
    elif kind == "divergences":
        values = shifted_divergences(config["kind"], config["shift"], config["sigma"])
        result["config"] = config
        result.update({name: _json_float(v) for name, v in values.items()})
    else:
        fits = kl_fits(config["mode_mean"], config["mode_std"], config["weight"], config["start"])
        result["config"] = config
        result.update(
            {
                "mixture": fits["mixture"],
                "moment_matched": {k: _json_float(v) for k, v in fits["moment_matched"].items()},
                "forward": {k: _json_float(v) for k, v in fits["forward"].items()},
                "reverse": {k: _json_float(v) for k, v in fits["reverse"].items()},
            }
        )
    return result
