"""Sweeps: a run inside a sweep is the run you would get alone; bad grids and sweeps
too large for memory are refused with one clear line; datasets without modes work."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from gan2d import cli
from gan2d.core import sweep
from gan2d.core.config import Config
from gan2d.core.evaluate import evaluate
from gan2d.core.runs import train_run

TINY = Config(width=8, depth=1, batch_size=32)


def test_parse_grid_cartesian_product_in_order():
    grid = sweep.parse_grid(["lr_d=1e-4, 3e-4,1e-3", "gp_weight=0.1,10"])
    assert grid == {"lr_d": (1e-4, 3e-4, 1e-3), "gp_weight": (0.1, 10.0)}
    cells = sweep.grid_cells(grid)
    assert len(cells) == 6
    assert cells[0] == {"lr_d": 1e-4, "gp_weight": 0.1}
    assert cells[1] == {"lr_d": 1e-4, "gp_weight": 10.0}
    configs = sweep.run_configs(TINY, cells, seeds=[5, 6])
    assert [(c.lr_d, c.gp_weight, c.seed) for c in configs[:3]] == [
        (1e-4, 0.1, 5),
        (1e-4, 0.1, 6),
        (1e-4, 10.0, 5),
    ]


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("width=64,128", ["width is a static field", "lr_d"]),
        ("loss=ns", ["loss is a static field"]),
        ("seed=1,2", ["--seeds"]),
        ("lr_x=1", ["unknown field"]),
        ("lr_d=", ["no values"]),
        ("lr_d", ["field=v1,v2"]),
        ("lr_d=abc", ["not a number"]),
        ("lr_d=1e-3,1e-3", ["repeated"]),
    ],
)
def test_parse_grid_refuses_bad_items(item, words):
    with pytest.raises(ValueError) as err:
        sweep.parse_grid([item])
    for word in words:
        assert word in str(err.value)


def test_out_of_range_value_names_the_field():
    with pytest.raises(ValueError, match="lr_d=2.0 is out of range"):
        sweep.run_sweep(TINY, {"lr_d": (1e-4, 2.0)}, seeds=[0], steps=1)


def test_sweep_cell_equals_the_same_config_trained_alone():
    """Tolerance: on CPU the vmapped program's batched matmuls may round differently
    from the single run's; we allow 1e-5 absolute on the final samples (observed: about
    1e-7 after 300 steps) and the same protocol metrics."""
    steps = 120
    result = sweep.run_sweep(
        TINY, {"lr_d": (1e-4, 1e-3)}, seeds=[0, 7], steps=steps, chunk_size=50, w1="sliced"
    )
    assert result.samples.shape == (4, 2500, 2)
    for i in (1, 2):  # (lr 1e-4, seed 7) and (lr 1e-3, seed 0)
        config = result.configs[i]
        alone = train_run(config, steps, chunk_size=steps)
        pts, _, alone_metrics = evaluate(config, alone.state, w1="sliced")
        np.testing.assert_allclose(result.samples[i], pts, atol=1e-5)
        assert result.run_metrics[i]["modes"] == alone_metrics["modes"]
        assert result.run_metrics[i]["hq"] == pytest.approx(alone_metrics["hq"], abs=0.05)
        np.testing.assert_allclose(result.history["d_loss"][i], alone.history["d_loss"], atol=1e-5)
    # different seeds really are different runs
    assert np.abs(result.samples[0] - result.samples[1]).max() > 1e-2


def test_too_large_sweep_is_refused_naming_the_size_that_fits():
    fit = sweep.memory.plan_memory(TINY, runs=1, max_memory_mb=1.0).max_runs
    with pytest.raises(ValueError, match=f"at most {fit} runs fit"):
        sweep.run_sweep(TINY, {}, seeds=list(range(fit + 1)), steps=1, max_memory_mb=1.0)


def test_a_sweep_on_data_without_modes_reports_w1_only(tmp_path):
    """Regression: ``gan2d sweep --set dataset=moons`` used to read ``modes`` that such
    data never has, and died with a traceback."""
    moons = TINY.with_changes(dataset="moons", data_std=0.05)
    result = sweep.run_sweep(moons, {"lr_d": (1e-4, 1e-3)}, seeds=[0], steps=5, w1="sliced")
    (first, second) = result.cell_summaries()
    assert "modes_mean" not in first and first["w1_mean"] > 0
    assert np.isnan(result.cell_metrics("modes")).all()
    result.save(str(tmp_path / "moons.npz"))
    assert np.isnan(np.load(tmp_path / "moons.npz")["hq"]).all()
    proc = subprocess.run(
        [sys.executable, "-m", "gan2d", "sweep", "--set", "dataset=moons", "--set", "width=8",
         "--set", "depth=1", "--set", "batch_size=32", "--steps", "5", "--seeds", "2",
         "--w1", "sliced"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cell, summary = (json.loads(line) for line in proc.stdout.strip().splitlines())
    assert cell["w1_mean"] > 0 and "modes_mean" not in cell and summary["runs"] == 2


def test_cli_sweep_prints_a_json_line_per_cell_and_a_summary(tmp_path, capsys):
    out = tmp_path / "sweep.npz"
    code = cli.main(
        [
            "sweep",
            "--set",
            "width=8",
            "--set",
            "depth=1",
            "--set",
            "batch_size=32",
            "--grid",
            "lr_d=1e-4,1e-3",
            "--grid",
            "ema=0,0.9",
            "--seeds",
            "2",
            "--steps",
            "20",
            "--w1",
            "sliced",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    cells, summary = lines[:-1], lines[-1]
    assert [c["cell"] for c in cells] == [
        {"lr_d": 1e-4, "ema": 0.0},
        {"lr_d": 1e-4, "ema": 0.9},
        {"lr_d": 1e-3, "ema": 0.0},
        {"lr_d": 1e-3, "ema": 0.9},
    ]
    for cell in cells:
        assert cell["runs"] == 2
        for key in ("modes_mean", "modes_std", "hq_mean", "hq_std", "w1_mean", "w1_std"):
            assert cell[key] is not None and cell[key] >= 0
        assert "rkl_mean" in cell
    assert summary["summary"] is True
    assert summary["runs"] == 8
    assert summary["model_steps_per_s"] > 0
    assert summary["seconds"] > 0
    assert 0 < summary["memory_estimate_mb"] <= summary["memory_limit_mb"]
    saved = np.load(out)
    assert saved["samples"].shape == (8, 2500, 2)
    assert list(saved["grid_fields"]) == ["lr_d", "ema"]
    assert saved["history_d_loss"].shape == (8, 20)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--grid", "width=64,128"], "width is a static field"),
        (["--grid", "lr_d=1e-3", "--max-memory-mb", "0.01"], "runs fit"),
        (["--seeds", "0"], "--seeds=0"),
    ],
)
def test_cli_sweep_bad_input_is_one_line_exit_2(args, words):
    proc = subprocess.run(
        [sys.executable, "-m", "gan2d", "sweep", "--steps", "5", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert words in lines[0]
