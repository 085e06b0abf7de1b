"""The Compare and Sweep tabs without a browser: build them, train through the shared
scheduler, and check what the figures draw, that nothing trains on the caller's thread,
that every preset can be compared, and that errors reach the tab."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from helpers import wait_until

from gan2d.ui import compare, sweep


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the presets' nets so the tabs compile and train quickly in tests."""
    monkeypatch.setattr(
        compare, "live_config", lambda c: c.with_changes(width=8, depth=1, batch_size=40)
    )


def show_next(lab, timeout: float = 120.0) -> None:
    wait_until(lab.show_latest, timeout)


def test_compare_shares_one_program_and_draws_each_run(tiny, pool):
    lab = compare.CompareLab(pool=pool, run_1="ns-gan", run_2="r1", run_3=compare.NONE)
    assert compare.compare_view(lab) is not None
    assert len(compare.group(lab.configs)) == 1  # same shapes: one program for both runs
    assert [pane.visible for pane in lab.map_panes] == [True, True, False, False]
    assert list(lab.fake_srcs[0].data["x"]) == []
    lab.steps_per_frame = 5
    lab.step()
    show_next(lab)
    assert "step 5" in lab.status
    for i in range(2):
        assert len(lab.fake_srcs[i].data["x"]) == 3 * compare.RESOLUTION.samples  # dots
        image = lab.img_srcs[i].data["image"][0]
        assert image.shape == (compare.RESOLUTION.grid, compare.RESOLUTION.grid)
        assert list(lab.line_srcs[i].data["step"]) == [5]
    # same seed, different configs (r1 penalty): the runs really differ after training
    lab.steps_per_frame = 20
    lab.step()
    show_next(lab)
    a, b = (np.asarray(lab.fake_srcs[i].data["x"]) for i in range(2))
    assert not np.allclose(a, b, equal_nan=True)
    assert "step 25" in lab.status
    # switching the metric redraws the chart from the kept history
    lab.metric = "sliced W1"
    assert list(lab.line_srcs[0].data["step"]) == [5, 25]
    assert all(v > 0 for v in lab.line_srcs[0].data["value"])
    lab.close()


def test_compare_trains_only_on_the_pool_never_on_the_callers_thread(tiny, pool, monkeypatch):
    """Regression: "step" trained on the event loop while the worker thread could be
    training the same runs."""
    threads: list[str] = []
    advance = compare.CompareRuns._advance

    def recording(job, n):
        threads.append(threading.current_thread().name)
        return advance(job, n)

    monkeypatch.setattr(compare.CompareRuns, "_advance", recording)
    lab = compare.CompareLab(pool=pool, run_1="ns-gan", run_2="ns-gan + loss=hinge")
    lab.run_3 = compare.NONE
    lab.steps_per_frame = 3
    lab.play()
    for _ in range(5):  # steps pressed while it plays
        lab.step()
        lab.play()
    show_next(lab)
    show_next(lab)
    lab.pause()
    wait_until(lambda: not lab.job.due())
    assert threads and all(name.startswith("gan2d-worker") for name in threads)
    step = int(lab.status.split("step ")[1].split(" ")[0].replace(",", ""))
    assert step % 3 == 0 and step > 0
    lab.close()


def test_compare_runs_every_preset_at_the_real_size(pool):
    """Regression: on a CPU, Compare forced batch 128, and best-grid25 (5 generators)
    failed validation inside a watcher; its test had replaced the sizing function."""
    lab = compare.CompareLab(pool=pool, run_1="best-grid25", run_2="ns-gan")
    lab.run_3 = compare.NONE
    assert lab.configs[0].n_generators == 5 and lab.configs[0].batch_size % 5 == 0
    assert "1: best-grid25" in lab.maps[0].figure.title.text
    lab.steps_per_frame = 1
    lab.step()
    show_next(lab, timeout=300)
    assert lab.notice.kind is None and "step 1" in lab.status
    lab.close()


def test_a_choice_that_fails_is_shown_on_the_tab_and_the_old_runs_stay(tiny, pool, monkeypatch):
    lab = compare.CompareLab(pool=pool, run_3=compare.NONE)
    before = list(lab.configs)
    real_config_for = compare.config_for

    def refusing(choice, seed):
        if choice == "hinge":
            raise ValueError("hinge cannot run here")
        return real_config_for(choice, seed)

    monkeypatch.setattr(compare, "config_for", refusing)
    lab.run_2 = "hinge"
    assert lab.notice.kind == "warning" and "hinge cannot run here" in lab.notice.text
    assert lab.run_2 == "wgan-gp" and lab.configs == before  # the menu shows what runs
    lab.close()


def test_sweep_tab_shows_progress_partial_results_then_the_result(pool):
    lab = sweep.SweepLab(
        pool=pool, preset="ns-gan", field="lr_d", values="1e-4, 1e-3", seeds=2, width=8
    )
    lab.batch_size = 32
    lab.steps = 6 * sweep.CHUNK
    assert sweep.sweep_view(lab) is not None
    assert list(lab.samples_src.data["x"]) == []
    lab.start()
    assert lab.running and lab.job is not None
    seen_partial = False
    deadline = time.monotonic() + 300
    while lab.running and time.monotonic() < deadline:
        lab.poll()
        if lab.running and len(lab.samples_src.data["x"]) > 0:
            seen_partial = True
            assert "samples so far" in lab.samples_fig.title.text
            assert "live" in lab.heat_fig.title.text
        time.sleep(0.05)
    assert seen_partial, "no partial result was shown while the sweep trained"
    assert lab.result is not None and lab.result.runs == 4
    assert len(lab.frame_src.data["x"]) == 4
    assert list(lab.heat_fig.x_range.factors) == ["0.0001", "0.001"]
    assert sorted(lab.heat_src.data["seed"]) == ["seed 0", "seed 0", "seed 1", "seed 1"]
    assert "4 runs" in lab.status and "model steps/s" in lab.status
    before = list(lab.heat_src.data["label"])
    lab.heat_metric = "W1"
    after = list(lab.heat_src.data["label"])
    assert after != before and all(float(v) > 0 for v in after)
    assert "W1 (sliced)" in lab.heat_fig.title.text


def test_a_stopped_sweep_says_where_it_stopped(pool):
    lab = sweep.SweepLab(pool=pool, values="1e-4", seeds=1, width=8, steps=100_000)
    lab.batch_size = 32
    lab.start()
    wait_until(lambda: lab.job.sweep.done > 0)
    lab.stop()
    wait_until(lambda: (lab.poll(), not lab.running)[1])
    assert "stopped at step" in lab.status and lab.result is None


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"values": "abc"}, "not a number"),
        ({"values": " , "}, "no values"),
        ({"values": "1e-4, 1e-4"}, "repeated"),
        ({"values": "2.0"}, "out of range"),
    ],
)
def test_sweep_tab_refuses_bad_values_with_a_message(changes, words, pool):
    lab = sweep.SweepLab(pool=pool, **changes)
    lab.start()
    assert not lab.running
    assert "Cannot run" in lab.status and words in lab.status
