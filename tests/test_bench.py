"""``gan2d bench``: on tiny sizes, the report has every measurement, positive rates,
the machine it ran on, and says plainly when torch is missing."""

from __future__ import annotations

import json
import sys

import pytest

from gan2d import cli
from gan2d.bench import speed as bench

TINY = ["--size", "8x1x16", "--runs", "2", "--seconds", "0.05"]


def _bench_json(capsys, *extra) -> dict:
    assert cli.main(["bench", "--quick", "--json", *TINY, *extra]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1  # one JSON object, nothing else on stdout
    return json.loads(out[0])


def test_bench_quick_json_reports_every_rate(capsys):
    report = _bench_json(capsys)
    for key in ("device", "platform", "jax_version", "cpu_count", "torch", "results"):
        assert key in report
    assert report["quick"] is True
    assert report["cpu_count"] >= 1
    assert any("quick" in note for note in report["notes"])
    rows = report["results"]
    assert [(r["loss"], r["width"], r["depth"], r["batch"]) for r in rows] == [
        ("ns", 8, 1, 16),
        ("wgan-gp", 8, 1, 16),
    ]
    for row in rows:
        assert row["scan"]["steps_per_s"] > 0
        assert row["jit_step"]["steps_per_s"] > 0
        assert row["vmap"]["2"]["model_steps_per_s"] > 0
        assert row["vmap"]["2"]["runs"] == 2
        assert row["ratios"]["scan_vs_jit_step"] > 0
        assert row["unbatched_scan"]["steps_per_s"] > 0  # what a batch of one is held to
        assert row["ratios"]["scan_vs_unbatched"] > 0
        assert row["ratios"]["vmap2_vs_scan"] > 0
        if report["torch"] != "torch not installed":
            assert row["torch_eager"]["steps_per_s"] > 0
            by_threads = row["torch_eager"]["steps_per_s_by_threads"]
            assert "1" in by_threads  # one thread is always tried (busy CPUs)
            assert row["torch_eager"]["steps_per_s"] == max(by_threads.values())
            assert row["ratios"]["scan_vs_torch_eager"] > 0
    assert rows[1]["d_steps"] == 5  # wgan-gp as its preset: 5 critic steps


def test_bench_without_torch_says_so(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    monkeypatch.delitem(sys.modules, "gan2d.bench.torch_ref", raising=False)
    report = _bench_json(capsys, "--loss", "ns")
    assert report["torch"] == "torch not installed"
    assert all(r["torch_eager"] is None for r in report["results"])


def test_bench_table_names_the_machine_and_ratios(capsys):
    assert cli.main(["bench", "--quick", *TINY, "--no-torch", "--loss", "ns"]) == 0
    out = capsys.readouterr().out
    assert "jax " in out and "CPUs" in out
    assert "| 8x1, batch 16 | ns |" in out
    assert "scan / jit-step" in out and "vmap 2 (model steps/s)" in out
    assert "batch of 1 / unbatched" in out
    assert "torch skipped" in out


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--size", "8x1"], "WIDTHxDEPTHxBATCH"), (["--runs", "0"], "at least 1")],
)
def test_bench_bad_options_exit_2(capsys, args, words):
    assert cli.main(["bench", "--quick", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_torch_reference_matches_gan2d_init_scheme():
    torch_ref = pytest.importorskip("gan2d.bench.torch_ref")
    config = bench.bench_config("wgan-gp", 8, 2, 16)
    gan = torch_ref.TorchGAN(config)
    d_loss, g_loss = gan.step()
    assert d_loss.isfinite() and g_loss.isfinite()
    sizes = [tuple(p.shape) for p in gan.g.parameters()]
    assert sizes == [(8, 2), (8,), (8, 8), (8,), (2, 8), (2,)]
    real = gan.sample_real(1000).numpy()
    radii = (real**2).sum(1) ** 0.5
    assert abs(radii.mean() - config.radius) < 0.05
