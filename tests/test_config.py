"""Config: validation messages, the flat-dict round trip, presets."""

import pytest

from gan2d.core.config import Config
from gan2d.core.spec import parse_sets
from gan2d.presets import PRESETS, get_preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips_through_flat_strings(name):
    config = PRESETS[name].config
    flat = config.to_dict()
    assert all(isinstance(v, str) for v in flat.values())
    assert Config.from_dict(flat) == config
    assert Config.from_dict(config.to_dict(only_changed=True)) == config


def test_config_is_hashable_and_its_static_part_ignores_data_fields():
    a = Config(lr_d=1e-4)
    b = Config(lr_d=3e-3, gp_weight=5.0, seed=7)
    assert hash(a) != hash(b)
    assert a.static_part() == b.static_part()
    assert hash(a.static_part()) == hash(b.static_part())
    assert Config(loss="wgan-gp").static_part() != a.static_part()
    assert Config(width=64).static_part() != a.static_part()
    # R1 and instance noise are compiled in only when on: on/off is static, the weight not
    assert Config(r1_weight=0.1).static_part() == Config(r1_weight=5.0).static_part()
    assert Config(r1_weight=0.1).static_part() != a.static_part()


@pytest.mark.parametrize(
    "flat, words",
    [
        ({"lr_d": "-1"}, ["lr_d", "-1", "range"]),
        ({"lr_d": "fast"}, ["lr_d", "fast", "number"]),
        ({"loss": "gan"}, ["loss", "gan", "wgan-gp"]),
        ({"width": "12.5"}, ["width", "whole"]),
        ({"depth": "99"}, ["depth", "99", "8"]),
        ({"minibatch_std": "maybe"}, ["minibatch_std", "true"]),
        ({"lr_g": "nan"}, ["lr_g", "finite"]),
        ({"colour": "red"}, ["colour", "known settings", "lr_d"]),
        ({"batch_size": "100", "pack": "3"}, ["batch_size", "pack"]),
        ({"dataset": "custom"}, ["custom_path"]),
    ],
)
def test_bad_values_name_the_field_the_value_and_what_is_allowed(flat, words):
    with pytest.raises(ValueError) as err:
        Config.from_dict(flat)
    for word in words:
        assert word in str(err.value)


def test_choosing_a_dataset_brings_its_protocol_std_unless_given():
    assert Config.from_dict({"dataset": "grid25"}).data_std == 0.05
    assert Config.from_dict({"dataset": "grid25", "data_std": "0.1"}).data_std == 0.1


def test_parse_sets_splits_on_the_first_equals_sign():
    assert parse_sets(["lr_d=1e-3", "custom_path=a=b.csv"]) == {
        "lr_d": "1e-3",
        "custom_path": "a=b.csv",
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_sets(["lr_d"])


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="wgan-gp"):
        get_preset("nope")


def test_presets_have_text_for_the_app():
    for preset in PRESETS.values():
        assert preset.summary and preset.watch and preset.steps > 0
