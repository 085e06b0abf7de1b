"""The lab's settings and URL query: bad links warn and never crash; good links
reproduce the run exactly."""

from __future__ import annotations

import dataclasses

import lab_state as ls
import pytest

from gan2d.config import PRESETS, field_spec


def test_empty_query_is_the_default_preset():
    q = ls.parse_query({})
    assert q.preset == ls.DEFAULT_PRESET
    assert q.config == ls.preset_config(ls.DEFAULT_PRESET)
    assert q.speed == ls.DEFAULT_SPEED
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
    assert q.speed == ls.DEFAULT_SPEED
    assert q.hide == ["controls", "lr_g"]
    text = " ".join(q.warnings)
    for word in ("nope", "speed", "bogus", "whatever"):
        assert word in text
    assert len(q.warnings) == 4


def test_a_link_cannot_read_server_files():
    q = ls.parse_query({"custom_path": "/etc/passwd", "dataset": "custom"})
    assert q.config.dataset == "ring8" and q.config.custom_path == ""
    assert len(q.warnings) == 2


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
    for name in ls.CONTROL_FIELDS:
        spec = field_spec(name)
        p = settings.param[name]
        if "choices" in spec:
            assert set(p.objects) <= set(spec["choices"])
        else:
            assert p.bounds == (spec["lo"], spec["hi"])
    assert list(settings.param["preset"].objects) == list(PRESETS)
    assert settings.preset == ls.DEFAULT_PRESET
    assert ls.settings_config(settings, ls.preset_config(ls.DEFAULT_PRESET)) == ls.preset_config(
        ls.DEFAULT_PRESET
    )


def test_every_preset_fits_the_lab():
    for name in PRESETS:
        config = ls.preset_config(name)
        q = ls.parse_query(ls.make_query(name, config, ls.DEFAULT_SPEED, []))
        assert q.config == config and q.warnings == []
