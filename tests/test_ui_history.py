"""Replay: the kept frames stay within their bounds, span the whole run evenly, start
over with a new run; the timeline shows a kept frame on the plots (curves marked at its
step, nothing added to them) and Live brings the latest back."""

from __future__ import annotations

import dataclasses

import numpy as np
from test_ui_plots import ALL_SHOWN, make_frame

from gan2d.ui.history import FrameHistory, Timeline
from gan2d.ui.plots import LabPlots


def test_the_record_is_bounded_and_spans_the_run_evenly():
    history = FrameHistory(max_frames=20)
    for step in range(1, 1001):
        history.add(make_frame(step * 5))
    steps = history.steps()
    assert 10 <= len(steps) <= 20
    assert steps[0] == 5 and steps[-1] == 5000  # the first and the newest stay
    gaps = np.diff(steps[:-1])
    assert gaps.min() == gaps.max()  # even spacing (the newest may sit closer)
    assert history.stride > 1


def test_the_byte_bound_holds_and_the_real_sample_is_shared():
    one = FrameHistory()
    one.add(make_frame(1))
    per_frame = one.nbytes
    history = FrameHistory(max_frames=1000, max_bytes=per_frame * 30)
    for step in range(1, 301):
        history.add(make_frame(step))
    assert history.nbytes <= per_frame * 30
    assert len(history) > 10
    reals = {id(f.snap["real"]) for f in history.frames}
    assert len(reals) == 1  # the same real points are kept once


def test_kept_frames_keep_their_snapshot_only():
    """A kept frame holds what its replay needs (the snapshot); the arrays its plots
    drew live (``Frame.drawn``) are left out of the record and made again on replay."""
    history = FrameHistory()
    frame = make_frame(5)
    frame.drawn = {"fake": {"x": np.zeros(10**6)}}  # as a lab's frame comes, drawn
    history.add(frame)
    assert history.frames[-1].drawn is None and history.frames[-1].step == 5
    plots = LabPlots()
    plots.show_still(history.frames[-1], ALL_SHOWN)
    assert len(plots.field_map.fake_src.data["x"]) == 3 * len(frame.snap["fake"])


def test_a_new_run_starts_a_new_record():
    history = FrameHistory()
    for step in range(1, 6):
        history.add(make_frame(step))
    restarted = dataclasses.replace(make_frame(1), run_id=2)
    history.add(restarted)
    assert history.steps() == [1]


def test_the_same_step_again_replaces_the_older_view():
    history = FrameHistory()
    history.add(make_frame(10))
    history.add(make_frame(10))  # new settings while paused: the same step, redrawn
    assert history.steps() == [10]


def test_the_timeline_shows_a_kept_frame_and_live_brings_the_latest_back():
    plots = LabPlots(extent=3.0)
    history = FrameHistory()
    frames = [make_frame(step) for step in (5, 10, 15, 20)]
    for frame in frames:
        plots.update(frame, ALL_SHOWN)
        history.add(frame)
    curve_points = len(plots.curve_history()["d_loss"][0])
    shown = []

    def show(frame):
        shown.append(frame.step)
        plots.show_still(frame, ALL_SHOWN)

    def live():
        plots.show_still(frames[-1], ALL_SHOWN)
        plots.mark_step(None)

    timeline = Timeline(history, on_show=show, on_live=live)
    timeline.sync(paused=False)
    assert timeline.slider.disabled  # while playing: pause to scrub
    timeline.sync(paused=True)
    assert not timeline.slider.disabled and timeline.slider.end == 3
    timeline.slider.value = 1
    assert shown == [10] and timeline.replaying and timeline.shown.step == 10
    fake = np.asarray(plots.fake_src.data["x"], np.float64)
    assert np.allclose(fake[0::3], history.frames[1].snap["fake"][:, 0])
    assert all(m.visible and m.location == 10 for m in plots.markers)
    assert len(plots.curve_history()["d_loss"][0]) == curve_points  # no curve point added
    timeline.go_live()
    assert not timeline.replaying and timeline.shown is None
    assert not any(m.visible for m in plots.markers)
    fake = np.asarray(plots.fake_src.data["x"], np.float64)
    assert np.allclose(fake[0::3], frames[-1].snap["fake"][:, 0])
