"""The lab's settings and URL query: bad links warn and never crash; good links
reproduce the run exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan2d.challenges import CHALLENGES
from gan2d.core.config import SPECS, Config
from gan2d.lessons import LESSONS
from gan2d.presets import PRESETS
from gan2d.ui import settings as ls


def test_empty_query_is_the_default_preset():
    q = ls.parse_query({})
    assert q.preset == ls.DEFAULT_PRESET
    assert q.config == ls.preset_config(ls.DEFAULT_PRESET)
    assert q.speed == PRESETS[ls.DEFAULT_PRESET].speed  # each preset has its own speed
    assert q.hide == [] and q.warnings == []


@pytest.mark.parametrize(
    "key, raw, needle",
    [
        ("lr_d", "banana", "lr_d"),
        ("lr_d", "5", "out of range"),
        ("width", "99999", "width"),
        ("loss", "magic", "loss"),
        ("seed", "1.5", "whole number"),
        ("lr_g", "nan", "lr_g"),
    ],
)
def test_bad_value_warns_and_keeps_the_default(key, raw, needle):
    q = ls.parse_query({key: raw, "lr_g": "0.0005"} if key != "lr_g" else {key: raw})
    assert len(q.warnings) == 1 and needle in q.warnings[0]
    default = ls.preset_config(ls.DEFAULT_PRESET)
    assert getattr(q.config, key) == getattr(default, key)
    if key != "lr_g":
        assert q.config.lr_g == 0.0005  # the good value next to it still applies


def test_unknown_keys_presets_speeds_and_hide_flags_warn():
    q = ls.parse_query(
        {"preset": "nope", "speed": "7", "bogus": "1", "hide": "controls,lr_g,whatever"}
    )
    assert q.preset == ls.DEFAULT_PRESET
    assert q.speed == PRESETS[ls.DEFAULT_PRESET].speed
    assert q.hide == ["controls", "lr_g"]
    text = " ".join(q.warnings)
    for word in ("nope", "speed", "bogus", "whatever"):
        assert word in text
    assert len(q.warnings) == 4


def test_a_link_cannot_read_server_files():
    q = ls.parse_query({"custom_path": "/etc/passwd", "dataset": "custom"})
    assert q.config.dataset == "ring8" and q.config.custom_path == ""
    assert len(q.warnings) == 1 and "only points drawn or uploaded here" in q.warnings[0]


def test_a_link_to_points_held_here_opens_them_and_says_when_they_are_gone():
    from gan2d.core import points

    name = points.register(np.array([[0.0, 0.0], [1.0, 0.5], [-1.0, 2.0]]))
    q = ls.parse_query({"custom_path": name, "dataset": "custom"})
    assert q.warnings == [] and q.config.dataset == "custom" and q.config.custom_path == name
    gone = "points:" + "0" * 16
    q = ls.parse_query({"custom_path": gone, "dataset": "custom"})
    assert q.config.dataset == "ring8"
    assert len(q.warnings) == 1 and "are gone" in q.warnings[0]


def test_query_round_trip_reproduces_the_run():
    config = dataclasses.replace(
        ls.preset_config("unrolled"), lr_d=3e-4, seed=42, unrolled_steps=8, ema=0.99
    )
    query = ls.make_query("unrolled", config, 20, ["controls", "hist"])
    assert query["preset"] == "unrolled" and query["seed"] == "42"
    assert "loss" not in query  # same as the preset: not repeated
    back = ls.parse_query(query)
    assert back.warnings == []
    assert back.config == config
    assert (back.preset, back.speed, back.hide) == ("unrolled", 20, ["controls", "hist"])


def test_dataset_sets_its_std_unless_the_link_says_otherwise():
    assert ls.parse_query({"dataset": "grid25"}).config.data_std == 0.05
    q = ls.parse_query({"data_std": "0.1", "dataset": "grid25"})
    assert q.config.data_std == 0.1 and q.warnings == []


def test_settings_parameters_follow_the_core_fields():
    settings = ls.LabSettings()
    for name, spec in SPECS.items():
        p = settings.param[name]
        if name in ls.LADDERS:
            assert set(ls.LADDERS[name]) <= set(p.objects)
        elif spec.kind == "choice":
            assert set(p.objects) <= set(spec.choices)
        elif spec.kind in ("int", "float"):
            assert p.bounds == (spec.lo, spec.hi)
    assert list(settings.param["preset"].objects) == list(PRESETS)
    assert settings.preset == ls.DEFAULT_PRESET
    assert ls.settings_config(settings) == ls.preset_config(ls.DEFAULT_PRESET)


def test_the_lab_runs_every_preset_at_a_valid_size():
    """Regression: one CPU-sizing rule for every tab. A 5-generator preset gets a batch
    that is a multiple of 5 (Compare once forced 128 and failed validation)."""
    for name in PRESETS:
        config = ls.preset_config(name)
        assert config.batch_size % config.n_generators == 0
        assert config.batch_size % config.pack == 0


def test_every_preset_fits_the_lab():
    for name in PRESETS:
        config = ls.preset_config(name)
        query = ls.make_query(name, config, PRESETS[name].speed, [])
        assert query == {"preset": name}  # its own speed is not repeated
        q = ls.parse_query(query)
        assert q.config == config and q.warnings == [] and q.speed == PRESETS[name].speed


QUERY_KEYS = st.sampled_from(
    [*SPECS, "preset", "speed", "hide", "bogus", "", "lesson", "step", "challenge", "present"]
)
QUERY_VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from([*LESSONS, *CHALLENGES, "1", "3", "7"]),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "-1", "0", "1e-300", "999999999999"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(QUERY_KEYS, QUERY_VALUES, max_size=8))
def test_any_query_gives_a_valid_config_and_warnings_never_an_exception(query):
    parsed = ls.parse_query(query)
    assert isinstance(parsed.config, Config)
    parsed.config.validate()
    assert parsed.preset in PRESETS and parsed.speed in ls.SPEEDS
    assert all(isinstance(w, str) and w for w in parsed.warnings)


def test_the_presenter_view_is_part_of_the_link():
    q = ls.parse_query({"present": "1", "preset": "unrolled"})
    assert q.present and q.warnings == []
    assert ls.make_query("unrolled", q.config, 10, [], True)["present"] == "1"
    assert "present" not in ls.make_query("unrolled", q.config, 10, [])
    q = ls.parse_query({"present": "big"})
    assert not q.present and "present='big'" in q.warnings[0]


def test_a_lesson_step_is_the_base_of_its_link():
    q = ls.parse_query({"lesson": "mode-collapse", "step": "4"})
    step = LESSONS["mode-collapse"].steps[3]
    assert q.warnings == [] and (q.lesson, q.step, q.preset) == ("mode-collapse", 4, step.preset)
    assert q.config.pack == 4 and q.config.lr_g == 1e-3 and q.hide == ["controls"]
    # the link of a changed run names the step and only what differs from it
    changed = dataclasses.replace(q.config, seed=3)
    query = ls.make_query(q.preset, changed, q.speed, [], lesson="mode-collapse", step=4)
    assert query == {"lesson": "mode-collapse", "step": "4", "seed": "3", "hide": ""}
    back = ls.parse_query(query)
    assert back.config == changed and back.hide == [] and back.warnings == []


def test_a_challenge_link_starts_from_the_challenge_and_hides_what_it_locks():
    c = CHALLENGES["clip-w1"]
    q = ls.parse_query({"challenge": "clip-w1", "clip": "0.1"})
    assert q.warnings == [] and q.challenge == "clip-w1"
    assert q.config == dataclasses.replace(c.config, clip=0.1)
    assert "loss" in q.hide and "clip" not in q.hide and "seed" not in q.hide
    assert ls.make_query(q.preset, q.config, q.speed, q.hide, challenge="clip-w1") == {
        "challenge": "clip-w1",
        "clip": "0.1",
    }


def test_bad_lesson_step_and_challenge_names_warn():
    q = ls.parse_query({"lesson": "nope", "step": "2", "challenge": "zz"})
    assert q.lesson is None and q.challenge is None and len(q.warnings) == 3
    assert "mode-collapse" in q.warnings[0] and "needs a lesson" in q.warnings[1]
    q = ls.parse_query({"lesson": "mode-collapse", "step": "99"})
    assert q.step == 1 and "steps 1 to 6" in q.warnings[0]
