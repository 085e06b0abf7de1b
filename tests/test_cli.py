"""`python -m gan2d ...` as a user runs it: JSON out, exit 2 with one line on bad input."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan2d.core import data, metrics
from gan2d.core.config import Config
from gan2d.presets import PRESETS


def gan2d(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "gan2d", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def gan2d_here(*args):
    """``gan2d`` run in this process (``cli.main``): the same exit status and output,
    without a second of JAX start-up per call. For the many bad-input cases."""
    import contextlib
    import io
    from types import SimpleNamespace

    from gan2d.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def assert_clean_error(result, *words):
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0]


def test_presets_lists_every_preset_with_a_description():
    result = gan2d("presets")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == list(PRESETS)
    assert json.loads(gan2d("presets", "--json").stdout).keys() == PRESETS.keys()


def test_train_prints_one_json_line_and_writes_the_run(tmp_path):
    out = tmp_path / "run.npz"
    result = gan2d(
        "train",
        "--preset",
        "wgan-gp",
        "--steps",
        "60",
        "--set",
        "width=32",
        "--set",
        "lr_d=2e-4",
        "--seed",
        "3",
        "--out",
        str(out),
        "--w1",
        "sliced",  # the exact W1 is scored by eval below (each costs seconds here)
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    for key in ("preset", "steps", "seconds", "steps_per_s", "modes", "hq", "rkl", "w1"):
        assert key in report
    assert report["preset"] == "wgan-gp" and report["steps"] == 60 and report["seed"] == 3
    assert report["config"]["lr_d"] == "0.0002" and report["config"]["width"] == "32"
    assert 0 <= report["modes"] <= 8 and report["steps_per_s"] > 0
    run = np.load(out)
    assert run["samples"].shape == (2500, 2) and run["real"].shape == (2500, 2)
    assert run["history_g_loss"].shape == (60,) and np.isfinite(run["history_d_loss"]).all()
    assert Config.from_dict(json.loads(str(run["config"]))).lr_d == 2e-4
    # the saved samples are what the report scored
    np.save(tmp_path / "s.npy", run["samples"])
    again = json.loads(
        gan2d("eval", "--samples", str(tmp_path / "s.npy"), "--dataset", "ring8").stdout
    )
    assert again["modes"] == report["modes"] and again["hq"] == pytest.approx(report["hq"])


def test_eval_scores_saved_samples_like_the_protocol(tmp_path):
    config = Config()
    samples = data.sample_numpy(config, 2500, 5)
    np.save(tmp_path / "perfect.npy", samples)
    result = gan2d("eval", "--samples", str(tmp_path / "perfect.npy"), "--dataset", "ring8")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = metrics.mode_metrics(samples, data.mode_means(config), config.data_std)
    assert report["modes"] == 8 == expected["modes"]
    assert report["hq"] == pytest.approx(expected["hq"])
    assert report["w1"] < 0.15  # chance differences in mode shares cost ~0.05-0.1


def test_eval_keeps_an_explicit_data_std(tmp_path):
    # with std 0.5 the HQ radius is 1.5: every point of a 0.02-std ring is HQ
    np.save(tmp_path / "ring.npy", data.sample_numpy(Config(), 2500, 6))
    result = gan2d(
        "eval",
        "--samples",
        str(tmp_path / "ring.npy"),
        "--dataset",
        "ring8",
        "--set",
        "data_std=0.5",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hq"] == 100.0


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--preset", "nope"], ["nope"]),
        (["train", "--set", "lr_d=-1"], ["lr_d", "range"]),
        (["train", "--set", "colour=red"], ["colour", "known settings"]),
        (["train", "--set", "lr_d"], ["key=value"]),
        (["train", "--steps", "0"], ["steps"]),
        (["train", "--steps", "ten"], ["steps"]),
        (["train", "--out", "/nonexistent/dir/run.npz", "--steps", "5"], ["does not exist"]),
        (
            ["train", "--set", "dataset=custom", "--set", "custom_path=/no/file.csv"],
            ["no such file"],
        ),
        (["eval", "--samples", "/no/such.npy", "--dataset", "ring8"], ["no such file"]),
        (["eval", "--samples", "x.npy", "--dataset", "moons"], ["dataset"]),
        (["frobnicate"], ["frobnicate"]),
        ([], ["required"]),
        (["theory", "xy", "--set", "lr=-3"], ["lr"]),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(args, words):
    assert_clean_error(gan2d_here(*args), *words)


@pytest.mark.parametrize(
    "array, words",
    [
        (np.array([[0.0, np.nan]] * 3), ["NaN"]),
        (np.zeros((4, 3)), ["shape"]),
        (np.array(["a", "b"]), ["shape"]),
    ],
)
def test_eval_refuses_bad_sample_files(tmp_path, array, words):
    np.save(tmp_path / "bad.npy", array)
    assert_clean_error(
        gan2d_here("eval", "--samples", str(tmp_path / "bad.npy"), "--dataset", "grid25"), *words
    )


def test_eval_refuses_a_file_that_is_not_npy(tmp_path):
    (tmp_path / "bad.npy").write_text("hello")
    assert_clean_error(
        gan2d_here("eval", "--samples", str(tmp_path / "bad.npy"), "--dataset", "ring8"), "npy"
    )


def test_custom_csv_dataset_trains_from_the_cli(tmp_path):
    pts = tmp_path / "pts.csv"
    pts.write_text(
        "x,y\n" + "\n".join(f"{np.cos(a):.4f},{np.sin(a):.4f}" for a in np.linspace(0, 6, 40))
    )
    result = gan2d(
        "train",
        "--steps",
        "20",
        "--set",
        "dataset=custom",
        "--set",
        f"custom_path={pts}",
        "--set",
        "width=16",
        "--w1",
        "sliced",  # seconds saved: the exact W1 is not what this test is about
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "modes" not in report and report["w1"] > 0


# ---------------------------------------------------------------------- run files

SMALL = ["--set", "width=16", "--set", "depth=1", "--set", "batch_size=32", "--w1", "sliced"]


def test_train_goes_on_from_saved_weights_as_if_it_never_stopped(tmp_path):
    config, first_w = str(tmp_path / "run.json"), str(tmp_path / "first.npz")
    on_w, straight_w = str(tmp_path / "on.npz"), str(tmp_path / "straight.npz")
    first = gan2d(
        "train", "--preset", "ns-gan", *SMALL, "--seed", "2", "--steps", "15",
        "--save-config", config, "--save-weights", first_w,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["config_file"] == config
    on = gan2d(
        "train", "--config", config, "--init", first_w, "--steps", "10", "--w1", "sliced",
        "--save-weights", on_w,
    )  # fmt: skip
    straight = gan2d(
        "train", "--config", config, "--steps", "25", "--w1", "sliced", "--save-weights", straight_w
    )
    assert on.returncode == 0 and straight.returncode == 0, on.stderr + straight.stderr
    on, straight = json.loads(on.stdout), json.loads(straight.stdout)
    assert on["preset"] == "ns-gan" and on["config"]["width"] == "16" and on["seed"] == 2
    assert (on["start_step"], on["steps"]) == (15, 10) and straight["start_step"] == 0
    for key in ("final_d_loss", "final_g_loss", "w1"):
        assert on[key] == straight[key], key
    on_arrays, straight_arrays = np.load(on_w), np.load(straight_w)
    assert on_arrays.files == straight_arrays.files
    for key in on_arrays.files:
        np.testing.assert_array_equal(on_arrays[key], straight_arrays[key], err_msg=key)

    result = gan2d("eval", "--config", config, "--weights", straight_w, "--w1", "sliced")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["step"] == 25 and report["w1"] == straight["w1"] and report["preset"] == "ns-gan"


@pytest.fixture
def run_files(tmp_path):
    from gan2d.core import runfile
    from gan2d.core.train import hparams_array, make_train

    config = Config(width=16, depth=1, batch_size=32)
    (tmp_path / "run.json").write_text(runfile.config_json(config, None))
    other = config.with_changes(width=8)
    state = make_train(other).init(jax.random.PRNGKey(0), hparams_array(other))
    (tmp_path / "width8.npz").write_bytes(runfile.weights_npz(other, state))
    (tmp_path / "bad.json").write_text('{"gan2d": "config", "version": 1, "settings": {')
    with (tmp_path / "big.csv").open("wb") as handle:
        handle.truncate(6 * 2**20)
    return tmp_path


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--config", "{dir}/missing.json"], ["--config", "no such file"]),
        (["train", "--config", "{dir}/bad.json"], ["bad.json is not valid JSON"]),
        (["train", "--preset", "ns-gan", "--config", "{dir}/run.json"], ["not both"]),
        (
            ["train", "--config", "{dir}/run.json", "--init", "{dir}/width8.npz"],
            ["width8.npz", "these weights are for width=8; this config has width=16"],
        ),
        (
            ["train", "--config", "{dir}/run.json", "--save-weights", "/nonexistent/w.npz"],
            ["--save-weights", "does not exist"],
        ),
        (
            ["train", "--set", "dataset=custom", "--set", "custom_path={dir}/big.csv"],
            ["big.csv", "over the limit of 5 MB"],
        ),
        (["eval", "--config", "{dir}/run.json"], ["--weights"]),
        (["eval"], ["--samples", "--config"]),
        (
            ["eval", "--config", "{dir}/run.json", "--weights", "{dir}/bad.json"],
            ["bad.json is not a .npz weights file"],
        ),
    ],
)
def test_bad_run_files_exit_2_with_one_clear_line(run_files, args, words):
    assert_clean_error(gan2d_here(*[a.format(dir=run_files) for a in args]), *words)
