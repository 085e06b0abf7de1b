"""The lab's Bokeh figures: built once per session, then fed frame by frame.

Per frame only ``ColumnDataSource.data`` changes (and curves ``stream`` with a
rollover); figures, titles and layouts are never rebuilt. The critic's colour scale is
fixed per run so a colour means the same thing over time.
"""

from __future__ import annotations

import time

import numpy as np
from bokeh.layouts import column
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    HoverTool,
    Legend,
    LegendItem,
    LinearAxis,
    LinearColorMapper,
    Range1d,
)
from bokeh.plotting import figure
from lab_runner import Frame

REAL = "#1b1b1b"
FAKE = "#e8590c"
D_COLOUR = "#1c7ed6"
G_COLOUR = "#e8590c"
ROLLOVER = 3000
FONT = "13pt"
# The curves and the histogram gather each frame's point and redraw about four times a
# second, one chart per frame: a line chart gains nothing visible at 20 redraws a
# second, and each redraw costs the browser a full repaint of its figure.
CURVES_EVERY_S = 0.25
# Room for a chart's y-axis (tick labels and axis label) at its usual widths. Bokeh
# sizes the frame to fit the axis, so without it the frame moved whenever the tick
# labels changed width, and each move laid the page out again.
CHART_BORDER_LEFT = 72
_DG_LEGEND = [("D", {"color": D_COLOUR, "width": 2}), ("G", {"color": G_COLOUR, "width": 2})]


def _blend(stops: list[str], n: int = 256) -> tuple[str, ...]:
    """``n`` colours interpolated linearly between hex ``stops``."""
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in stops], float)
    at = np.linspace(0, len(stops) - 1, n)
    lo = np.minimum(at.astype(int), len(stops) - 2)
    frac = (at - lo)[:, None]
    mixed = rgb[lo] * (1 - frac) + rgb[lo + 1] * frac
    return tuple("#" + "".join(f"{int(round(v)):02x}" for v in row) for row in mixed)


# Pale purple (looks fake to the critic) to white to pale green (looks real), as in
# GAN Lab; pale so that the points and arrows on top stay readable.
CRITIC_PALETTE = _blend(["#b197fc", "#e5dbff", "#ffffff", "#d3f9d8", "#8ce99a"])


def critic_scale(loss: str) -> tuple[str, tuple[float, float] | None]:
    """(colour-bar title, fixed range or None when the range is set per run)."""
    if loss in ("minimax", "ns"):
        return "D(x) = P(real)", (0.0, 1.0)
    if loss == "lsgan":
        return "D(x), targets: real 1, fake 0", (-0.5, 1.5)
    if loss == "hinge":
        return "critic score (margins at ±1)", (-2.0, 2.0)
    return "critic score − its mean (a W-critic is defined up to a constant)", None


def _style(fig, title_size=FONT):
    fig.title.text_font_size = title_size
    fig.xaxis.major_label_text_font_size = "11pt"
    fig.yaxis.major_label_text_font_size = "11pt"
    fig.toolbar.logo = None
    fig.toolbar_location = None
    fig.background_fill_color = "#fbfbfd"
    fig.border_fill_color = "white"
    fig.outline_line_color = "#dee2e6"
    return fig


def static_legend(fig, entries, location="top_left", glyph="line") -> Legend:
    """A legend whose swatches are drawn by stand-in renderers on a one-point source
    that never changes. Bokeh rebuilds a legend's DOM (new canvases and all) whenever a
    renderer it lists gets new data; a curve that streams every frame would make every
    frame pay for that. ``entries``: (label, style keywords) pairs."""
    items = []
    for label, style in entries:
        # one NaN point: Bokeh draws no swatch for an empty renderer, and NaN draws nothing
        stand_in = ColumnDataSource({"x": [np.nan], "y": [np.nan]})
        if glyph == "line":
            renderer = fig.line("x", "y", source=stand_in, **style)
        else:
            renderer = fig.quad(left="x", right="x", bottom="y", top="y", source=stand_in, **style)
        items.append(LegendItem(label=label, renderers=[renderer]))
    legend = Legend(items=items, location=location, label_text_font_size="11pt")
    fig.add_layout(legend)
    return legend


def _dots(fig, source, color: str, alpha: float = 1.0, size: int = 3, cap: str = "square"):
    """Points drawn as zero-length pieces of one NaN-separated line (see ``_dot_data``)
    with square or round caps: the browser fills them all in one stroke instead of one
    shape per point, and it redraws them every frame. Overlapping dots do not darken
    each other."""
    return fig.line(
        "x", "y", source=source, color=color, alpha=alpha, line_width=size, line_cap=cap
    )


def _line_figure(title, y_label, y_type="linear", height=230):
    fig = figure(
        title=title,
        height=height,
        sizing_mode="stretch_width",
        y_axis_type=y_type,
        x_axis_label="step",
        y_axis_label=y_label,
        tools="",
        min_border_left=CHART_BORDER_LEFT,
    )
    return _style(fig)


class LabPlots:
    """Every figure of the lab and the sources that feed them."""

    def __init__(self, extent: float = 3.5):
        self.extent = extent
        self.run_id = None
        self.scale_id = None
        self.scale_range = None
        self._build_field(extent)
        self._build_manifold(extent)
        self._build_curves()
        self._build_hist()
        self._chart_sources = {
            "losses": (self.loss_src,),
            "grads": (self.grad_src,),
            "modes": (self.mode_src,),
            "w1": (self.sw1_src, self.w1_src),
        }
        self._rows: dict[ColumnDataSource, list[tuple]] = {
            src: [] for sources in self._chart_sources.values() for src in sources
        }
        self._charts = (*self._chart_sources, "hist")
        self._flushed = dict.fromkeys(self._charts, -float("inf"))
        self._hist = None
        self._real = None

    # ------------------------------------------------------------------ build
    def _build_field(self, extent):
        e = extent
        fig = figure(
            title="Real (black) vs generated (orange) on the critic's map",
            x_range=Range1d(-e, e),
            y_range=Range1d(-e, e),
            height=560,
            width=560,
            match_aspect=True,
            tools="",
        )
        self.mapper = LinearColorMapper(palette=CRITIC_PALETTE, low=0.0, high=1.0)
        self.critic_src = ColumnDataSource(
            {
                "image": [np.zeros((2, 2), np.float32)],
                "x": [-e],
                "y": [-e],
                "dw": [2 * e],
                "dh": [2 * e],
            }
        )
        fig.image(
            "image",
            x="x",
            y="y",
            dw="dw",
            dh="dh",
            source=self.critic_src,
            color_mapper=self.mapper,
        )
        # The colour bar has a figure of its own, under the map: Bokeh redraws a whole
        # figure when any of it changes, and the bar changes once per run, not per frame.
        self.colorbar = ColorBar(
            color_mapper=self.mapper,
            title="D(x) = P(real)",
            title_text_font_size="11pt",
            major_label_text_font_size="10pt",
            orientation="horizontal",
            height=14,
            location=(0, 0),
        )
        bar = figure(width=560, height=80, tools="", toolbar_location=None, min_border=0)
        bar.add_layout(self.colorbar, "below")
        bar.axis.visible = False
        bar.grid.visible = False
        bar.outline_line_color = None
        self.colorbar_figure = bar
        self.real_src = ColumnDataSource({"x": [], "y": []})
        _dots(fig, self.real_src, REAL, 0.55)
        # Arrows are NaN-separated polylines: the browser strokes each set as one path
        # rather than one path per arrow.
        self.grid_arrow_src = ColumnDataSource({"x": [], "y": []})
        fig.line("x", "y", source=self.grid_arrow_src, color="#495057", alpha=0.7, line_width=1.2)
        self.push_src = ColumnDataSource({"x": [], "y": []})
        fig.line("x", "y", source=self.push_src, color=FAKE, alpha=0.45, line_width=1)
        self.fake_src = ColumnDataSource({"x": [], "y": []}, name="fake")
        _dots(fig, self.fake_src, FAKE, size=5, cap="round")
        # the map covers the grid, and axes would be measured and redrawn every frame
        fig.axis.visible = False
        fig.grid.visible = False
        self.field = _style(fig)
        self.field_view = column(self.field, self.colorbar_figure)

    def _build_manifold(self, extent):
        e = extent
        fig = figure(
            title="Manifold: a latent grid mapped by G",
            x_range=Range1d(-e, e),
            y_range=Range1d(-e, e),
            height=380,
            width=380,
            match_aspect=True,
            tools="",
        )
        _dots(fig, self.real_src, REAL, 0.35)
        # rows and columns of the mapped grid, each one NaN-separated polyline (two buffers)
        self.manifold_src = ColumnDataSource({"rx": [], "ry": [], "cx": [], "cy": []})
        fig.line("rx", "ry", source=self.manifold_src, color="#5f3dc4", line_width=1.2)
        fig.line("cx", "cy", source=self.manifold_src, color="#0c8599", line_width=1.2)
        fig.axis.visible = False  # the same square as the map beside it
        self.manifold = _style(fig)

    def _build_curves(self):
        self.loss_src = ColumnDataSource({"step": [], "d_loss": [], "g_loss": []})
        fig = _line_figure("Losses", "loss")
        fig.line("step", "d_loss", source=self.loss_src, color=D_COLOUR, width=2)
        fig.line("step", "g_loss", source=self.loss_src, color=G_COLOUR, width=2)
        static_legend(fig, _DG_LEGEND)
        self.losses = fig

        self.grad_src = ColumnDataSource({"step": [], "d_grad": [], "g_grad": []})
        fig = _line_figure("Gradient norms (log): vanishing shows here", "‖∇‖", y_type="log")
        fig.line("step", "d_grad", source=self.grad_src, color=D_COLOUR, width=2)
        fig.line("step", "g_grad", source=self.grad_src, color=G_COLOUR, width=2)
        static_legend(fig, _DG_LEGEND)
        self.grads = fig

        self.mode_src = ColumnDataSource({"step": [], "modes": [], "hq": []})
        fig = _line_figure("Modes and HQ share (live, 512 samples)", "modes")
        fig.y_range = Range1d(0, 8.5)
        fig.extra_y_ranges = {"hq": Range1d(0, 100)}
        fig.add_layout(LinearAxis(y_range_name="hq", axis_label="HQ %"), "right")
        modes_style = {"color": "#2b8a3e", "width": 2}
        hq_style = {"color": "#862e9c", "width": 2}
        fig.line("step", "modes", source=self.mode_src, **modes_style)
        fig.line("step", "hq", source=self.mode_src, y_range_name="hq", **hq_style)
        static_legend(fig, [("modes", modes_style), ("HQ %", hq_style)])
        self.modes = fig

        self.sw1_src = ColumnDataSource({"step": [], "sliced_w1": []})
        self.w1_src = ColumnDataSource({"step": [], "w1": []})
        fig = _line_figure("Wasserstein-1 to the real data", "W1")
        sliced_style = {"color": "#868e96", "width": 1.5}
        exact_style = {"color": "#212529", "width": 2.5}
        fig.line("step", "sliced_w1", source=self.sw1_src, **sliced_style)
        fig.line("step", "w1", source=self.w1_src, **exact_style)
        static_legend(
            fig,
            [("sliced (every frame)", sliced_style), ("exact (256 points)", exact_style)],
            location="top_right",
        )
        self.w1 = fig

    def _build_hist(self):
        self.hist_src = ColumnDataSource({"left": [], "right": [], "real": [], "fake": []})
        fig = _line_figure("D(real) vs D(fake)", "share of points")
        fig.xaxis.axis_label = "D(x)"
        real_style = {"fill_color": REAL, "fill_alpha": 0.45, "line_color": None}
        fake_style = {"fill_color": FAKE, "fill_alpha": 0.55, "line_color": None}
        for top, style in (("real", real_style), ("fake", fake_style)):
            fig.quad(left="left", right="right", bottom=0, top=top, source=self.hist_src, **style)
        static_legend(
            fig, [("real", real_style), ("generated", fake_style)], "top_center", glyph="quad"
        )
        fig.add_tools(HoverTool(tooltips=[("real", "@real{0.000}"), ("fake", "@fake{0.000}")]))
        self.hist = fig

    # ------------------------------------------------------------------ per frame
    def figures(self) -> dict:
        return {
            "field": self.field_view,
            "manifold": self.manifold,
            "losses": self.losses,
            "grads": self.grads,
            "modes": self.modes,
            "w1": self.w1,
            "hist": self.hist,
        }

    def set_extent(self, extent: float) -> None:
        """New view square (dataset or radius changed): not per frame."""
        self.extent = extent
        for fig in (self.field, self.manifold):
            fig.x_range.update(start=-extent, end=extent)
            fig.y_range.update(start=-extent, end=extent)

    def clear_curves(self) -> None:
        for src, rows in self._rows.items():
            src.data = {k: [] for k in src.data}
            rows.clear()

    def _critic_image(self, frame: Frame) -> np.ndarray:
        critic = np.asarray(frame.snap["critic"], np.float32)
        title, fixed = critic_scale(frame.config.loss)
        if fixed is None:
            finite = critic[np.isfinite(critic)]
            critic = critic - (finite.mean() if finite.size else 0.0)
        if frame.scale_id != self.scale_id:
            self.scale_id = frame.scale_id
            self.scale_range = None
            self.colorbar.title = title
        if fixed is not None:
            lo, hi = fixed
        else:
            finite = critic[np.isfinite(critic)]
            half = float(np.percentile(np.abs(finite), 98)) if finite.size else 1.0
            half = max(half * 1.25, 1e-3)
            old = self.scale_range
            # fixed per run; widened (never narrowed) when the critic outgrows it
            if old is not None and half <= old[1] * 1.5:
                lo, hi = old
            else:
                lo, hi = -half, half
        if (lo, hi) != self.scale_range:
            self.scale_range = (lo, hi)
            self.mapper.update(low=lo, high=hi)
        return critic

    def update(self, frame: Frame, visible: dict[str, bool]) -> None:
        """Feed one frame. Hidden heavy plots are skipped; curves always stream."""
        snap = frame.snap
        if frame.run_id != self.run_id:
            self.run_id = frame.run_id
            self.clear_curves()
        if abs(frame.extent - self.extent) > 1e-9:
            self.set_extent(frame.extent)
        e = frame.extent
        real = snap["real"]
        if not _same(self._real, real):  # the real sample changes only with the settings
            self._real = real
            self.real_src.data = _dot_data(real)
        if visible.get("field", True):
            self.critic_src.data = {
                "image": [self._critic_image(frame)],
                "x": [-e],
                "y": [-e],
                "dw": [2 * e],
                "dh": [2 * e],
            }
            fake = snap["fake"]
            self.fake_src.data = _dot_data(fake)
            ends = _arrow_ends(fake, snap["fake_uv"], 0.5 * e / 16)
            self.push_src.data = _polyline(_segments(fake, ends))
            starts = snap["arrow_xy"]
            ends = _arrow_ends(starts, snap["arrow_uv"], 0.9 * e / 16)
            self.grid_arrow_src.data = _polyline(_arrows(starts, ends))
        if visible.get("manifold", True):
            self.manifold_src.data = _manifold_lines(snap["manifold"], frame.config.z_dim == 1)
        self._collect(frame)
        self._hist = frame.hist if visible.get("hist", True) else None
        now = time.monotonic()
        # One chart per frame, the one waiting longest, so the frames cost the same;
        # all that are badly late (a slow page), and all at once when the run stops.
        due = [c for c in self._charts if now - self._flushed[c] >= CURVES_EVERY_S]
        if due and frame.curves:
            due = {min(due, key=self._flushed.get)} | {
                c for c in due if now - self._flushed[c] >= 2 * CURVES_EVERY_S
            }
        elif not frame.curves:
            due = self._charts
        for chart in due:
            self._flushed[chart] = now
            self._flush(chart)

    def _flush(self, chart: str) -> None:
        if chart == "hist":
            if self._hist is not None:
                # small: plain lists travel inside the JSON message, with no binary buffers
                self.hist_src.data = {k: np.asarray(v).tolist() for k, v in self._hist.items()}
            return
        for src in self._chart_sources[chart]:
            rows = self._rows[src]
            if rows:
                columns = list(src.data)
                src.stream(
                    dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True)), ROLLOVER
                )
                rows.clear()

    def _collect(self, frame: Frame) -> None:
        """Queue this frame's point of every curve (sent by ``_flush``)."""
        rows = self._rows
        step = frame.step
        curves = frame.curves
        if curves:
            rows[self.loss_src].append((step, curves["d_loss"], curves["g_loss"]))
            rows[self.grad_src].append(
                (step, max(curves["d_grad_norm"], 1e-12), max(curves["g_grad_norm"], 1e-12))
            )
        snap = frame.snap
        if "live_modes" in snap:
            n_modes = len(snap["live_mode_counts"])
            if self.modes.y_range.end != n_modes + 0.5:
                self.set_mode_axis(n_modes)
            rows[self.mode_src].append((step, int(snap["live_modes"]), float(snap["live_hq"])))
        rows[self.sw1_src].append((step, float(snap["sliced_w1"])))
        if frame.w1 is not None:
            rows[self.w1_src].append((step, frame.w1))

    def set_mode_axis(self, n_modes: int | None) -> None:
        self.modes.y_range.update(start=0, end=(n_modes or 8) + 0.5)


def _same(old, new: np.ndarray) -> bool:
    return isinstance(old, np.ndarray) and old.shape == new.shape and np.array_equal(old, new)


def _arrow_ends(xy: np.ndarray, uv: np.ndarray, max_len: float) -> np.ndarray:
    """End points of arrows from each point along its push, the longest ``max_len`` long.
    Lengths grow with the square root of the push so weak pushes stay visible."""
    xy = np.asarray(xy, np.float32)
    uv = np.asarray(uv, np.float32)
    norm = np.linalg.norm(uv, axis=1)
    finite = np.isfinite(norm)
    peak = float(norm[finite].max()) if finite.any() else 0.0
    if peak <= 0:
        scaled = np.zeros_like(uv)
    else:
        length = np.sqrt(norm / peak) * max_len
        scaled = uv / np.maximum(norm, 1e-12)[:, None] * length[:, None]
    return xy + scaled


def _segments(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(n, 2, 2): one two-point piece per segment."""
    return np.stack([starts, ends], axis=1).astype(np.float32)


def _arrows(starts: np.ndarray, ends: np.ndarray, head: float = 0.35) -> np.ndarray:
    """(n, 5, 2): tail, tip, one barb, tip again, the other barb. Drawn as one stroke the
    retraced barb does not darken. Barbs are ``head`` times the arrow's length."""
    starts = np.asarray(starts, np.float32)
    ends = np.asarray(ends, np.float32)
    back = (starts - ends) * head
    cos, sin = np.float32(np.cos(0.45)), np.float32(np.sin(0.45))
    left = ends + np.stack(
        [cos * back[:, 0] - sin * back[:, 1], sin * back[:, 0] + cos * back[:, 1]], 1
    )
    right = ends + np.stack(
        [cos * back[:, 0] + sin * back[:, 1], -sin * back[:, 0] + cos * back[:, 1]], 1
    )
    return np.stack([starts, ends, left, ends, right], axis=1)


def _dot_data(points: np.ndarray) -> dict:
    """Columns that draw each point as a zero-length segment (see ``_dots``)."""
    return _polyline(_segments(points, points))


def _polyline(pieces: np.ndarray) -> dict:
    """(n, k, 2) pieces -> one NaN-separated polyline's columns."""
    n, k, _ = pieces.shape
    gap = np.full((n, 1, 2), np.nan, np.float32)
    flat = np.concatenate([pieces.astype(np.float32), gap], axis=1).reshape(n * (k + 1), 2)
    return {"x": flat[:, 0], "y": flat[:, 1]}


def _manifold_lines(points: np.ndarray, is_line: bool) -> dict:
    """Rows and columns of the mapped latent grid as NaN-separated polylines
    (a single line when z_dim = 1)."""
    points = np.asarray(points, np.float32)
    n = int(round(np.sqrt(len(points))))
    if is_line or n * n != len(points):
        empty = np.zeros(0, np.float32)
        return {"rx": points[:, 0], "ry": points[:, 1], "cx": empty, "cy": empty}
    grid = points.reshape(n, n, 2)
    rows, cols = _polyline(grid), _polyline(grid.transpose(1, 0, 2))
    # a ColumnDataSource needs equal lengths: rows and columns have the same count
    return {"rx": rows["x"], "ry": rows["y"], "cx": cols["x"], "cy": cols["y"]}
