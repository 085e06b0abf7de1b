"""The lab's figures, fed frame by frame without a browser: what each source holds is
what the page draws, curves lose no points while they redraw a chart per frame, and
legends keep their swatches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gan2d.core.config import Config
from gan2d.ui import plots as lab_plots
from gan2d.ui.plots import LabPlots
from gan2d.ui.session import Frame
from gan2d.ui.style import FAKE

CONFIG = Config(width=16, depth=1, batch_size=32).validate()
RNG = np.random.default_rng(0)


def make_frame(step: int, curves: bool = True) -> Frame:
    n = 12
    snap = {
        "fake": RNG.normal(size=(n, 2)).astype(np.float32),
        "real": np.ones((n, 2), np.float32),
        "critic": RNG.uniform(size=(8, 8)).astype(np.float32),
        "arrow_xy": np.array([[0.0, 0.0], [1.0, 1.0]], np.float32),
        "arrow_uv": np.array([[1.0, 0.0], [0.0, -2.0]], np.float32),
        "fake_uv": RNG.normal(size=(n, 2)).astype(np.float32),
        "manifold": RNG.normal(size=(16, 2)).astype(np.float32),
        "sliced_w1": np.float32(0.5),
        "live_modes": np.int32(3),
        "live_hq": np.float32(40.0),
        "live_mode_counts": np.zeros(8, np.float32),
        "step": np.int32(step),
    }
    diag = {"d_loss": 1.0, "g_loss": 2.0, "d_grad_norm": 3.0, "g_grad_norm": 4.0}
    hist = {
        "left": np.arange(3.0),
        "right": np.arange(1.0, 4.0),
        "real": np.ones(3),
        "fake": np.zeros(3),
    }
    return Frame(
        step=step, version=0, run_id=1, scale_id=1, config=CONFIG, extent=3.0, snap=snap,
        curves=diag if curves else {}, hist=hist, w1=None, steps_per_s=10.0,
    )  # fmt: skip


def _cross(u, v):
    return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]


ALL_SHOWN = dict.fromkeys(("field", "manifold", "hist"), True)


def test_points_and_arrows_are_drawn_where_the_frame_says():
    plots = LabPlots(extent=3.0)
    frame = make_frame(5)
    plots.update(frame, ALL_SHOWN)
    fake = plots.fake_src.data
    # each point is a zero-length piece of one NaN-separated line: x, x, NaN, ...
    np.testing.assert_array_equal(fake["x"][0::3], frame.snap["fake"][:, 0])
    np.testing.assert_array_equal(fake["x"][1::3], frame.snap["fake"][:, 0])
    assert np.isnan(fake["x"][2::3]).all()
    arrows = plots.grid_arrow_src.data
    x, y = arrows["x"].reshape(2, 6), arrows["y"].reshape(2, 6)
    tail, tip = np.stack([x[:, 0], y[:, 0]], 1), np.stack([x[:, 1], y[:, 1]], 1)
    np.testing.assert_allclose(tail, frame.snap["arrow_xy"])
    direction = (tip - tail) / np.linalg.norm(tip - tail, axis=1, keepdims=True)
    np.testing.assert_allclose(direction, [[1, 0], [0, -1]], atol=1e-6)  # along the push
    for barb in (2, 4):  # both barbs end behind the tip, on either side of the shaft
        back = np.stack([x[:, barb], y[:, barb]], 1) - tip
        assert (np.sum(back * direction, axis=1) < 0).all()
    side = [_cross(direction, np.stack([x[:, b], y[:, b]], 1) - tip) for b in (2, 4)]
    assert (side[0] * side[1] < 0).all()


def test_curves_redraw_one_chart_per_frame_and_lose_no_points(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(lab_plots.time, "monotonic", lambda: now[0])
    plots = LabPlots()
    sources = {
        "losses": plots.loss_src, "grads": plots.grad_src, "modes": plots.mode_src,
        "w1": plots.sw1_src,
    }  # fmt: skip
    plots.update(make_frame(1), ALL_SHOWN)  # the first frame draws everything
    assert all(list(src.data["step"]) == [1] for src in sources.values())
    assert plots.hist_src.data["real"] == [1.0, 1.0, 1.0]

    counts = []
    for i, step in enumerate(range(2, 12)):
        now[0] = 100.0 + 0.3 + 0.01 * i  # every chart is due, none badly late
        before = {k: len(src.data["step"]) for k, src in sources.items()}
        plots.update(make_frame(step), ALL_SHOWN)
        counts.append(sum(len(src.data["step"]) != before[k] for k, src in sources.items()))
    assert max(counts) == 1 and sum(counts) == 4  # one chart at a time, each once

    now[0] += 0.01
    # a frame with no training behind it (paused) draws everything queued; it adds no
    # loss points, but the live metrics of its snapshot
    plots.update(make_frame(12, curves=False), ALL_SHOWN)
    for name, src in sources.items():
        last = 11 if name in ("losses", "grads") else 12
        assert list(src.data["step"]) == list(range(1, last + 1))


def test_a_badly_late_chart_is_redrawn_without_waiting_its_turn(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(lab_plots.time, "monotonic", lambda: now[0])
    plots = LabPlots()
    plots.update(make_frame(1), ALL_SHOWN)
    now[0] = 2 * lab_plots.CURVES_EVERY_S + 0.01  # a slow page: every chart is late
    plots.update(make_frame(2), ALL_SHOWN)
    assert list(plots.loss_src.data["step"]) == list(plots.grad_src.data["step"]) == [1, 2]


def test_charts_range_over_their_data_and_a_new_run_keeps_the_pages_models(monkeypatch):
    """Each chart's axes span its data (a tenth more, as Bokeh's own automatic ranges);
    a new run empties the charts without putting new models in the page: a new range
    model made Bokeh walk every model of the page again (~0.1 s a time on the event
    loop) on every restart and on every follower's first frame."""
    from bokeh.document import Document
    from bokeh.document.models import DocumentModelManager

    now = [0.0]
    monkeypatch.setattr(lab_plots.time, "monotonic", lambda: now[0])
    plots = LabPlots()
    doc = Document()
    for fig in plots.figures().values():
        doc.add_root(fig)
    walks = []
    real_recompute = DocumentModelManager.recompute
    monkeypatch.setattr(
        DocumentModelManager, "recompute", lambda self: walks.append(1) or real_recompute(self)
    )
    ranges = {id(fig.x_range) for fig in (plots.losses, plots.grads, plots.hist)}
    for step in (100, 200, 300):
        now[0] += 1.0  # every chart due
        plots.update(make_frame(step), ALL_SHOWN)
    assert (plots.losses.x_range.start, plots.losses.x_range.end) == pytest.approx((90, 310))
    assert (plots.losses.y_range.start, plots.losses.y_range.end) == pytest.approx((0.95, 2.05))
    log_lo, log_hi = np.log10(3.0), np.log10(4.0)  # the gradient chart pads in log space
    pad = (log_hi - log_lo) * 0.05
    assert plots.grads.y_range.start == pytest.approx(10 ** (log_lo - pad))
    assert plots.grads.y_range.end == pytest.approx(10 ** (log_hi + pad))
    assert (plots.hist.x_range.start, plots.hist.x_range.end) == pytest.approx((-0.15, 3.15))
    assert (plots.hist.y_range.start, plots.hist.y_range.end) == pytest.approx((-0.05, 1.05))

    restarted = dataclasses.replace(make_frame(10), run_id=2)
    now[0] += 1.0
    plots.update(restarted, ALL_SHOWN)
    assert list(plots.loss_src.data["step"]) == [10]
    assert (plots.losses.x_range.start, plots.losses.x_range.end) == pytest.approx((9, 11))
    assert {id(fig.x_range) for fig in (plots.losses, plots.grads, plots.hist)} == ranges
    assert walks == []


def test_a_long_run_keeps_the_latest_points_of_each_curve(monkeypatch):
    """Past ``ROLLOVER`` points a curve drops its oldest ones, on the server and on the
    page alike: the page gets only each flush's new points and the same limit (a page
    that applied every message has the server's curve), and the chart ranges over the
    points kept."""
    from bokeh.document import Document
    from bokeh.document.events import ColumnsStreamedEvent
    from bokeh.protocol import Protocol

    now = [0.0]
    monkeypatch.setattr(lab_plots.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(lab_plots, "ROLLOVER", 5)
    plots = LabPlots()
    doc = Document()
    for fig in plots.figures().values():
        doc.add_root(fig)
    page = Document.from_json(doc.to_json())  # the page's copy, made when it loaded
    doc.models.flush_synced()  # as Bokeh does once the page has the document
    sent: list = []
    doc.on_change(sent.append)
    for step in range(1, 9):
        now[0] += 1.0  # every chart due
        plots.update(make_frame(step * 100), ALL_SHOWN)
    loss = plots.loss_src.data
    assert list(loss["step"]) == [400, 500, 600, 700, 800]
    assert list(loss["d_loss"]) == [1.0] * 5
    assert (plots.losses.x_range.start, plots.losses.x_range.end) == pytest.approx((380, 820))
    streamed = [
        e for e in sent if isinstance(e, ColumnsStreamedEvent) and e.model is plots.loss_src
    ]
    assert len(streamed) == 7 and all(e.rollover == 5 for e in streamed)
    assert [list(e.data["step"]) for e in streamed] == [[n] for n in range(200, 900, 100)]
    Protocol().create("PATCH-DOC", sent).apply_to_document(page)
    assert list(page.get_model_by_id(plots.loss_src.id).data["step"]) == list(loss["step"])


@pytest.mark.parametrize("name", ["losses", "grads", "modes", "w1", "hist"])
def test_legends_have_swatches_that_never_change(name):
    plots = LabPlots()
    fig = plots.figures()[name]
    (legend,) = fig.legend
    for item in legend.items:
        (renderer,) = item.renderers
        data = renderer.data_source.data
        # Bokeh draws no swatch for an empty source; one NaN point draws only the swatch
        assert all(len(v) == 1 and np.isnan(v[0]) for v in data.values())
        assert renderer.data_source not in (plots.loss_src, plots.hist_src)


def test_each_generator_of_a_mixture_has_its_own_colour():
    plots = LabPlots(extent=3.0)
    frame = make_frame(5)
    mixture = dataclasses.replace(frame, config=CONFIG.with_changes(n_generators=4))
    plots.update(mixture, ALL_SHOWN)
    fake = frame.snap["fake"]
    mixture_src = plots.field_map.mixture_src
    lines = [plots.fake_src.data["x"], *mixture_src.data["xs"]]
    assert len(lines) == 4 and len(set(mixture_src.data["colour"])) == 3
    for i, line in enumerate(lines):
        drawn = np.asarray(line, np.float64)[0::3]
        np.testing.assert_allclose(drawn, fake[i::4, 0], rtol=1e-6)  # sample i: generator i % 4
    assert FAKE not in mixture_src.data["colour"]  # the first generator keeps orange
    assert "a colour per generator" in plots.field.title.text
    plots.update(frame, ALL_SHOWN)  # one generator again: one colour, the others emptied
    assert mixture_src.data["xs"] == [] and "(orange)" in plots.field.title.text
