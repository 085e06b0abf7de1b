"""A run's files: a config file gives back the config (and its points), a weights file
gives back the state, and training on from it equals training straight, bit for bit."""

from __future__ import annotations

import io
import json

import jax
import numpy as np
import pytest

from gan2d.core import points, runfile
from gan2d.core.config import Config
from gan2d.core.runfile import RunFileError
from gan2d.core.runs import train_run
from gan2d.core.train import hparams_array, make_train
from gan2d.presets import PRESETS

TINY = Config(width=8, depth=1, batch_size=32)


def named_arrays(state) -> dict[str, np.ndarray]:
    flat, _ = jax.tree_util.tree_flatten_with_path(state)
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}


def assert_same_state(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    arrays_a, arrays_b = named_arrays(a), named_arrays(b)
    for key, value in arrays_a.items():
        assert value.dtype == arrays_b[key].dtype, key
        np.testing.assert_array_equal(value, arrays_b[key], err_msg=key)


def fresh_state(config: Config):
    return make_train(config).init(jax.random.PRNGKey(config.seed), hparams_array(config))


# ---------------------------------------------------------------------- config files


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_config_file_gives_back_the_config_and_the_preset(name):
    config = PRESETS[name].config.with_changes(seed=7, lr_d=3.3e-4)
    text = runfile.config_json(config, name)
    doc = json.loads(text)
    assert doc["gan2d"] == "config" and doc["version"] == 1 and "points" not in doc
    assert len(doc["settings"]) == len(Config().to_dict())  # every setting, not the changes
    assert runfile.config_from_json(text) == (config, name)
    assert runfile.config_from_json(text.encode()) == (config, name)


def test_custom_points_travel_inside_the_config_file():
    pts = np.random.default_rng(0).normal(size=(500, 2)) * 1e-3 + np.pi
    config = Config(dataset="custom", custom_path=points.register(pts), width=16)
    doc = json.loads(runfile.config_json(config, None))
    assert doc["settings"]["custom_path"] == "" and len(doc["points"]) == 500
    loaded, preset = runfile.config_from_json(json.dumps(doc))
    assert preset is None and loaded.custom_path == config.custom_path  # the same points
    np.testing.assert_array_equal(points.lookup(loaded.custom_path), pts)


def test_points_from_a_file_are_embedded_and_the_path_is_dropped(tmp_path):
    path = tmp_path / "pts.csv"
    path.write_text("x,y\n0,0\n1,1\n-1,2\n")
    config = Config(dataset="custom", custom_path=str(path))
    loaded, _ = runfile.config_from_json(runfile.config_json(config, None))
    assert points.is_point_set(loaded.custom_path)
    assert loaded == config.with_changes(custom_path=loaded.custom_path)
    np.testing.assert_array_equal(points.lookup(loaded.custom_path), [[0, 0], [1, 1], [-1, 2]])


def test_many_points_are_thinned_evenly_and_the_file_says_so():
    pts = np.stack([np.arange(25_000.0), np.zeros(25_000)], axis=1)
    config = Config(dataset="custom", custom_path=points.register(pts))
    doc = json.loads(runfile.config_json(config, None))
    assert doc["points_thinned_from"] == 25_000 and len(doc["points"]) == runfile.EMBED_MAX
    steps = np.diff([x for x, _ in doc["points"]])
    assert set(steps) <= {1.0, 2.0}  # evenly spread over the whole set


def settings_doc(**extra) -> str:
    return json.dumps({"gan2d": "config", "version": 1, "settings": {}, **extra})


@pytest.mark.parametrize(
    "raw, words",
    [
        ("", ["is empty"]),
        ("{", ["not valid JSON", "line 1"]),
        (b"\xff\xfe\x00", ["not valid JSON"]),
        ("[" * 100_000, ["not valid JSON"]),
        ("[1, 2]", ["not a gan2d config file"]),
        ('{"gan2d": "weights"}', ["not a gan2d config file"]),
        ('{"gan2d": "config", "version": 9, "settings": {}}', ["version 9", "version 1"]),
        ('{"gan2d": "config", "version": "1", "settings": {}}', ["version '1'"]),
        ('{"gan2d": "config", "version": 1}', ['"settings"']),
        (settings_doc(preset=3), ['"preset"']),
        (settings_doc(settings={"colour": "red"}), ["unknown setting 'colour'"]),
        (settings_doc(settings={"width": "wide"}), ["width", "whole number"]),
        (settings_doc(settings={"width": [1]}), ["width", "wrong type"]),
        (settings_doc(settings={"lr_d": -1}), ["lr_d", "range"]),
        (settings_doc(settings={"dataset": "custom"}), ["custom_path"]),
        (
            settings_doc(settings={"dataset": "custom"}, points=[[0, 1], [2]]),
            ['"points"', "pairs of numbers"],
        ),
        (
            settings_doc(settings={"dataset": "custom"}, points=[[0, 1], [2, 3]]),
            ["at least 3"],
        ),
        (
            settings_doc(settings={"dataset": "custom"}, points=[[0, 1, 2]] * 3),
            ["shape (3, 3)"],
        ),
        (
            '{"gan2d": "config", "version": 1, "settings": {"dataset": "custom"}, '
            '"points": [[0, 1], [NaN, 1], [2, 3]]}',
            ["NaN"],
        ),
    ],
)
def test_a_bad_config_file_says_what_is_wrong_in_one_line(raw, words):
    with pytest.raises(RunFileError) as info:
        runfile.config_from_json(raw, "my.json")
    message = str(info.value)
    assert message.startswith("my.json") and "\n" not in message
    for word in words:
        assert word in message


# ---------------------------------------------------------------------- weights files


def test_weights_give_back_the_whole_state_without_pickles():
    config = TINY.with_changes(ema=0.9, seed=5)
    state = train_run(config, 5).state
    raw = runfile.weights_npz(config, state, "ns-gan")
    stored = np.load(io.BytesIO(raw), allow_pickle=False)
    assert str(stored["__format__"]) == "gan2d-weights-1"
    assert runfile.config_from_json(str(stored["__config__"])) == (config, "ns-gan")
    for part in ("['g']", "['d']", "['g_ema']", "['g_opt']", "['d_opt']", "['key']", "['step']"):
        assert any(key.startswith(part) for key in stored.files), part
    assert_same_state(runfile.state_from_npz(raw, config), state)
    loaded_config, preset, loaded = runfile.run_from_npz(raw)
    assert (loaded_config, preset) == (config, "ns-gan") and int(loaded["step"]) == 5


def test_loading_weights_applies_the_given_configs_data_settings():
    raw = runfile.weights_npz(TINY, fresh_state(TINY))
    state = runfile.state_from_npz(raw, TINY.with_changes(lr_d=0.5))
    assert float(state["hp"]["lr_d"]) == np.float32(0.5)


def test_weights_for_another_width_are_refused_naming_the_width():
    raw = runfile.weights_npz(TINY, fresh_state(TINY))
    with pytest.raises(RunFileError) as info:
        runfile.state_from_npz(raw, TINY.with_changes(width=16), "w.npz")
    message = str(info.value)
    assert "these weights are for width=8; this config has width=16" in message
    assert message.startswith("w.npz") and "float32[16]" in message


def test_weights_for_another_optimiser_are_refused_naming_it():
    raw = runfile.weights_npz(TINY, fresh_state(TINY))
    with pytest.raises(RunFileError, match="optimizer=adam; this config has optimizer=sgd"):
        runfile.state_from_npz(raw, TINY.with_changes(optimizer="sgd"))


def test_a_stacked_state_is_not_saved():
    state = jax.tree_util.tree_map(lambda a: a[None], fresh_state(TINY))
    with pytest.raises(ValueError, match="stacked"):
        runfile.weights_npz(TINY, state)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda good: b"", ["not a .npz"]),
        (lambda good: b"PK\x03\x04 not really a zip", ["not a .npz"]),
        (lambda good: good[: len(good) // 2], ["not a .npz"]),
        (lambda good: npy(np.zeros((3, 2))), ["single .npy"]),
        (lambda good: npz(a=np.zeros(3)), ["not a gan2d weights file"]),
        (lambda good: npz(__format__=np.array("gan2d-weights-1")), ["has no array ['d']"]),
        (lambda good: npz(__format__=np.array([[Payload()]], dtype=object)), ["not a gan2d"]),
    ],
)
def test_a_bad_weights_file_says_what_is_wrong(make, words):
    good = runfile.weights_npz(TINY, fresh_state(TINY))
    with pytest.raises(RunFileError) as info:
        runfile.state_from_npz(make(good), TINY, "w.npz")
    assert str(info.value).startswith("w.npz")
    for word in words:
        assert word in str(info.value)


def _unpickled():
    raise AssertionError("a pickle ran")


class Payload:
    def __reduce__(self):
        return (_unpickled, ())


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_an_upload_is_told_apart_by_its_bytes():
    assert runfile.file_kind(runfile.weights_npz(TINY, fresh_state(TINY))) == "weights"
    assert runfile.file_kind(b'\xef\xbb\xbf \n{"gan2d": "config"}') == "config"
    assert runfile.file_kind(b"x,y\n1,2\n") == "points"
    assert runfile.file_kind(npy(np.zeros((3, 2)))) == "points"


# ---------------------------------------------------------------------- training on


def test_training_on_from_saved_weights_equals_training_straight_bit_for_bit():
    config = TINY.with_changes(seed=3, ema=0.5, lr_decay_steps=30, label_smoothing=0.1)
    first = train_run(config, 10, chunk_size=5)
    raw = runfile.weights_npz(config, first.state)
    loaded = runfile.state_from_npz(raw, config)
    after = train_run(config, 5, init_state=loaded)
    straight = train_run(config, 15, chunk_size=15)
    assert int(after.state["step"]) == 15
    assert_same_state(after.state, straight.state)
    for key, values in straight.history.items():
        np.testing.assert_array_equal(
            np.concatenate([first.history[key], after.history[key]]), values, err_msg=key
        )


def test_a_state_of_another_shape_is_refused_by_train_run():
    with pytest.raises(ValueError, match="not the state of one run"):
        train_run(TINY.with_changes(width=16), 2, init_state=fresh_state(TINY))


def test_an_uploaded_config_never_names_a_file_on_the_server(tmp_path):
    """Regression: a config naming /etc/passwd made the server read it, and its error
    message showed the file's lines."""
    path = tmp_path / "secret.csv"
    path.write_text("1,2\n3,4\n5,6\n")
    doc = {"gan2d": "config", "version": 1, "settings": {"dataset": "custom"}}
    doc["settings"]["custom_path"] = str(path)
    with pytest.raises(runfile.RunFileError, match="must carry its points") as refusal:
        runfile.config_from_json(json.dumps(doc))
    assert "1,2" not in str(refusal.value)
    config, _ = runfile.config_from_json(json.dumps(doc), allow_paths=True)  # the CLI
    assert config.custom_path == str(path)
