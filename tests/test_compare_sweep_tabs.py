"""The Compare and Sweep tabs without a browser: build them, train a few steps through
their state's methods, and check that what the figures draw has changed."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("panel")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

import compare_tab  # noqa: E402
import sweep_tab  # noqa: E402


def _tiny(monkeypatch):
    """Shrink the presets' nets so the tabs compile and train quickly in tests."""
    monkeypatch.setattr(
        compare_tab, "cpu_sizes", lambda c: c.with_changes(width=8, depth=1, batch_size=32)
    )


def test_compare_shares_one_program_and_draws_each_run(monkeypatch):
    _tiny(monkeypatch)
    lab = compare_tab.CompareLab(run_1="ns-gan", run_2="r1", run_3=compare_tab.NONE)
    view = compare_tab.compare_view(lab)
    assert view is not None
    assert lab.lockstep.programs == 1  # same shapes: one vmapped program for both runs
    assert [f.visible for f in lab.run_figs] == [True, True, False, False]
    assert lab.fake_srcs[0].data["x"] == []
    lab.advance(5)
    assert lab.show_latest()
    assert lab.lockstep.step_count() == 5
    for i in range(2):
        fake = np.asarray(lab.fake_srcs[i].data["x"])
        assert fake.shape == (compare_tab.RESOLUTION.samples,)
        image = lab.img_srcs[i].data["image"][0]
        assert image.shape == (compare_tab.RESOLUTION.grid, compare_tab.RESOLUTION.grid)
        assert list(lab.line_srcs[i].data["step"]) == [5]
    # same seed, different configs (r1 penalty): the runs really differ after training
    lab.advance(20)
    lab.show_latest()
    a, b = (np.asarray(lab.fake_srcs[i].data["x"]) for i in range(2))
    assert not np.allclose(a, b)
    assert "step 25" in lab.status
    # switching the metric redraws the chart from the kept history
    lab.metric = "sliced W1"
    assert list(lab.line_srcs[0].data["step"]) == [5, 25]
    assert all(v > 0 for v in lab.line_srcs[0].data["value"])


def test_compare_worker_thread_delivers_frames_and_stops(monkeypatch):
    _tiny(monkeypatch)
    lab = compare_tab.CompareLab(
        run_1="ns-gan", run_2="ns-gan + loss=hinge", run_3=compare_tab.NONE, steps_per_frame=3
    )
    assert lab.lockstep.programs == 2  # different losses: separate programs, in lockstep
    lab.play()
    try:
        assert lab.playing
        deadline = time.monotonic() + 120
        waiter = threading.Event()
        shown = False
        while not shown and time.monotonic() < deadline:
            shown = lab.show_latest()
            waiter.wait(0.05)
        assert shown, "no frame from the worker within 120 s"
    finally:
        lab.pause()
    assert not lab.playing and lab._thread is None
    step = lab.lockstep.step_count()
    assert step > 0 and step % 3 == 0
    assert len(lab.fake_srcs[1].data["x"]) == compare_tab.RESOLUTION.samples
    # paused means paused: no more training happens
    assert lab.lockstep.step_count() == step


def test_sweep_tab_runs_and_fills_small_multiples_and_heat_map():
    lab = sweep_tab.SweepLab(
        preset="ns-gan", field="lr_d", values="1e-4, 1e-3", seeds=2, steps=20, width=8
    )
    lab.batch_size = 32
    view = sweep_tab.sweep_view(lab)
    assert view is not None
    assert lab.samples_src.data["x"] == []
    lab.start(wait=True)
    assert not lab.running
    assert lab.result is not None and lab.result.runs == 4
    assert len(lab.samples_src.data["x"]) > 0
    assert len(lab.frame_src.data["x"]) == 4
    assert list(lab.heat_fig.x_range.factors) == ["0.0001", "0.001"]
    assert sorted(lab.heat_src.data["seed"]) == ["seed 0", "seed 0", "seed 1", "seed 1"]
    assert "4 runs" in lab.status and "model steps/s" in lab.status
    before = list(lab.heat_src.data["label"])
    lab.heat_metric = "W1"
    after = list(lab.heat_src.data["label"])
    assert after != before and all(float(v) > 0 for v in after)
    assert "W1 (sliced)" in lab.heat_fig.title.text


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"values": "abc"}, "not a number"),
        ({"values": " , "}, "give one or more values"),
        ({"values": "1e-4, 1e-4"}, "repeated"),
        ({"values": "2.0"}, "out of range"),
    ],
)
def test_sweep_tab_refuses_bad_values_with_a_message(changes, words):
    lab = sweep_tab.SweepLab(**changes)
    lab.start()
    assert not lab.running
    assert "Cannot run" in lab.status and words in lab.status
