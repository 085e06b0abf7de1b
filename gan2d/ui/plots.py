"""The lab's Bokeh figures: built once per session, then fed frame by frame.

Per frame only ``ColumnDataSource.data`` changes (and curves ``stream`` with a
rollover); figures, titles and layouts are never rebuilt. The critic's colour scale is
fixed per run so a colour means the same thing over time.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

import numpy as np
from bokeh.core.property.validation import validate
from bokeh.layouts import column
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    CustomJS,
    FreehandDrawTool,
    HoverTool,
    Legend,
    LegendItem,
    LinearAxis,
    LinearColorMapper,
    Range1d,
    Span,
)
from bokeh.plotting import figure

from gan2d.ui.style import (
    ARROW_COLOUR,
    CRITIC_PALETTE,
    D_COLOUR,
    EXACT_W1_COLOUR,
    FAKE,
    FONT,
    G_COLOUR,
    GENERATOR_COLOURS,
    HQ_COLOUR,
    MANIFOLD_COLS,
    MANIFOLD_ROWS,
    MODES_COLOUR,
    REAL,
    SLICED_W1_COLOUR,
    TICK_FONT,
    centred_critic,
    critic_range,
    critic_scale,
    style_figure,
)

if TYPE_CHECKING:
    from gan2d.core.config import Config
    from gan2d.ui.session import Frame

ROLLOVER = 3000
# The curves and the histogram gather each frame's point and redraw about four times a
# second, one chart per frame: a line chart gains nothing visible at 20 redraws a
# second, and each redraw costs the browser a full repaint of its figure.
CURVES_EVERY_S = 0.25
RANGE_PADDING = 0.1  # as Bokeh's automatic ranges: a tenth of the data's span
# Room for a chart's y-axis (tick labels and axis label) at its usual widths. Bokeh
# sizes the frame to fit the axis, so without it the frame moved whenever the tick
# labels changed width, and each move laid the page out again.
CHART_BORDER_LEFT = 72
FIELD_TITLES = {  # (a mixture?, presenting?): a presenter's map is smaller, its font larger
    (False, False): "Real (black) vs generated (orange) on the critic's map",
    (True, False): "Real (black) vs generated (a colour per generator) on the critic's map",
    (False, True): "Real (black), generated (orange)",
    (True, True): "Real (black), generated (by generator)",
}
MODES_TITLE = "Modes and HQ share (live, 512 samples)"
NO_MODES_TITLE = "Modes and HQ: not defined for this data (it has no modes): see W1"
DRAWN = "#1971c2"
_DG_LEGEND = [("D", {"color": D_COLOUR, "width": 2}), ("G", {"color": G_COLOUR, "width": 2})]


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
    legend = Legend(items=items, location=location, label_text_font_size=TICK_FONT)
    fig.add_layout(legend)
    return legend


def dots(fig, source, color: str, alpha: float = 1.0, size: int = 3, cap: str = "square"):
    """Points drawn as zero-length pieces of one NaN-separated line (see ``dot_data``)
    with square or round caps: the browser fills them all in one stroke instead of one
    shape per point, and it redraws them every frame. Overlapping dots do not darken
    each other."""
    return fig.line(
        "x", "y", source=source, color=color, alpha=alpha, line_width=size, line_cap=cap
    )


def _line_figure(title, y_label, y_type="linear", height=230):
    fig = line_figure(
        title=title,
        height=height,
        sizing_mode="stretch_width",
        y_axis_type=y_type,
        x_axis_label="step",
        y_axis_label=y_label,
        tools="",
        min_border_left=CHART_BORDER_LEFT,
    )
    return style_figure(fig)


def hold_ranges(fig, y: bool = True, log: bool = False) -> None:
    """Fixed ranges while a chart has no data: Bokeh cannot range an empty chart and
    warns in the console on every paint of it (a page load paints each a few times).
    ``fit_ranges`` fits them to the data once there is some. ``y=False`` leaves a y
    range the chart sets itself.

    A chart's ranges are the ``Range1d`` models it was built with (``line_figure``),
    changed in place: putting a new range model in a figure makes Bokeh walk every
    model of the page again (about 0.1 s of the server's event loop for a lab's page,
    each time), which is what a run's restart and a follower's first frame paid,
    several times over, when the charts swapped to Bokeh's automatic ranges."""
    _set_range(fig.x_range, 0.0, 1.0)
    if y:
        _set_range(fig.y_range, *((0.1, 10.0) if log else (0.0, 1.0)))


def fit_ranges(fig, xs, ys=None, log: bool = False) -> None:
    """Fit a chart's ranges to its data as Bokeh's automatic ranges would: the data's
    span and a tenth more (``xs``, ``ys``: sequences of columns; ``ys=None`` leaves
    the y range alone). Columns with no finite value (no usable one on a log axis)
    leave the range as it was."""
    span = data_span(xs)
    if span is not None:
        _set_range(fig.x_range, *span)
    if ys is not None:
        span = data_span(ys, log)
        if span is not None:
            _set_range(fig.y_range, *span)


def data_span(columns, log: bool = False, padding: float = RANGE_PADDING):
    """(start, end) around the finite values of ``columns`` (positive ones on a log
    axis, padded in log space), or None when there is none. One value gets a span of
    2 (a decade each side on a log axis), like Bokeh's ``DataRange1d``."""
    parts = [np.asarray(c, dtype=np.float64).ravel() for c in columns]
    values = np.concatenate(parts) if parts else np.zeros(0)
    values = values[np.isfinite(values)]
    if log:
        values = np.log10(values[values > 0])
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    half = 1.0 if hi == lo else (hi - lo) * (1.0 + padding) / 2.0
    centre = (lo + hi) / 2.0
    start, end = centre - half, centre + half
    return (10.0**start, 10.0**end) if log else (start, end)


def line_figure(**kw):
    """A Bokeh figure whose ranges are ``Range1d`` models, for ``hold_ranges`` and
    ``fit_ranges`` to change in place."""
    fig = figure(x_range=Range1d(), y_range=Range1d(), **kw)
    hold_ranges(fig, log=kw.get("y_axis_type") == "log")
    return fig


def _set_range(rng, start: float, end: float) -> None:
    if rng.start != start or rng.end != end:
        rng.update(start=start, end=end)


class CriticMap:
    """A square map of the critic's values under the real and the generated points,
    and (optionally) the push the generator's loss gives each fake point and each point
    of a coarse grid. The colour bar has a figure of its own, under the map: Bokeh
    redraws a whole figure when any of it changes, and the bar changes once per run,
    not per frame. ``view`` is the map with its bar."""

    def __init__(self, extent: float, title: str, size: int = 560, arrows: bool = True):
        e = extent
        self.extent = extent
        self.arrows = arrows
        self.scale_id = None
        self.scale_range = None
        fig = figure(
            title=title,
            x_range=Range1d(-e, e),
            y_range=Range1d(-e, e),
            height=size,
            width=size,
            match_aspect=True,
            tools="",
        )
        self.mapper = LinearColorMapper(palette=CRITIC_PALETTE, low=0.0, high=1.0)
        self.critic_src = ColumnDataSource(_image_data(np.zeros((2, 2), np.float32), e))
        fig.image(
            "image",
            x="x",
            y="y",
            dw="dw",
            dh="dh",
            source=self.critic_src,
            color_mapper=self.mapper,
        )
        self.colorbar = ColorBar(
            color_mapper=self.mapper,
            title="D(x) = P(real)",
            title_text_font_size=TICK_FONT,
            major_label_text_font_size="10pt",
            orientation="horizontal",
            height=14,
            location=(0, 0),
        )
        # fixed ranges: a figure with no glyphs and automatic ranges warns on every paint
        bar = figure(
            width=size,
            height=80,
            tools="",
            toolbar_location=None,
            min_border=0,
            x_range=Range1d(0, 1),
            y_range=Range1d(0, 1),
        )
        bar.add_layout(self.colorbar, "below")
        bar.scatter([0.5], [0.5], alpha=0)  # a figure with no renderer makes Bokeh warn
        bar.axis.visible = False
        bar.grid.visible = False
        bar.outline_line_color = None
        self.colorbar_figure = bar
        self.real_src = ColumnDataSource({"x": [], "y": []})
        self.real_dots = dots(fig, self.real_src, REAL, 0.55)
        # Arrows are NaN-separated polylines: the browser strokes each set as one path
        # rather than one path per arrow.
        self.grid_arrow_src = ColumnDataSource({"x": [], "y": []})
        self.push_src = ColumnDataSource({"x": [], "y": []})
        if arrows:
            fig.line(
                "x", "y", source=self.grid_arrow_src, color=ARROW_COLOUR, alpha=0.7, line_width=1.2
            )
            fig.line("x", "y", source=self.push_src, color=FAKE, alpha=0.45, line_width=1)
        self.fake_src = ColumnDataSource({"x": [], "y": []}, name="fake")
        self.fake_dots = dots(fig, self.fake_src, FAKE, size=5 if size >= 400 else 4, cap="round")
        # a mixture's other generators (sample i is generator i mod n): one line of dots
        # each, in its own colour, in one renderer; empty for a single generator
        self.mixture_src = ColumnDataSource({"xs": [], "ys": [], "colour": []})
        fig.multi_line(
            "xs", "ys", source=self.mixture_src, line_color="colour",
            line_width=5 if size >= 400 else 4, line_cap="round",
        )  # fmt: skip
        self._mixture = 1
        # the map covers the grid, and axes would be measured and redrawn every frame
        fig.axis.visible = False
        fig.grid.visible = False
        # the presenter view draws the real points again, over the fakes, so that a mode
        # under a crowd of orange stays visible from the back of a room
        self.real_on_top = dots(fig, self.real_src, REAL, 0.9, size=5)
        self.real_on_top.visible = False
        self.figure = style_figure(fig)
        self.view = column(self.figure, self.colorbar_figure)
        self._real = None

    def set_presenting(self, on: bool, size: int) -> None:
        """The presenter view: a map of ``size`` pixels, thick points, the real points
        also drawn on top, a large title."""
        self.figure.update(width=size, height=size)
        self.colorbar_figure.update(width=size, height=60 if on else 80)
        self.real_dots.glyph.line_width = 5 if on else 3
        self.fake_dots.glyph.line_width = 8 if on else 5
        self.real_on_top.visible = on
        self.figure.title.text_font_size = "17pt" if on else FONT

    def set_extent(self, extent: float) -> None:
        """New view square (dataset or radius changed): not per frame."""
        self.extent = extent
        self.figure.x_range.update(start=-extent, end=extent)
        self.figure.y_range.update(start=-extent, end=extent)

    def clear(self) -> None:
        for src in (self.real_src, self.fake_src, self.grid_arrow_src, self.push_src):
            src.data = {"x": [], "y": []}
        self.mixture_src.data = {"xs": [], "ys": [], "colour": []}
        self._real = None

    def show(
        self,
        snap: dict,
        loss: str,
        scale_id,
        extent: float,
        generators: int = 1,
        drawn: dict | None = None,
    ) -> None:
        """Draw one snapshot. ``scale_id`` changes when the critic's values may mean
        something else (a new run or loss): the colour range is set afresh then. With
        several ``generators``, each one's points get their own colour. ``drawn``: the
        snapshot's ``drawing``, if made already (a lab's frame comes with it)."""
        if drawn is None:
            drawn = drawing(snap, loss, extent, generators, arrows=self.arrows)
        if abs(extent - self.extent) > 1e-9:
            self.set_extent(extent)
        self.show_real(drawn)
        self.critic_src.data = _image_data(
            self._critic_image(drawn["critic"], loss, scale_id), extent
        )
        self.fake_src.data = drawn["fake"]
        if generators > 1 or self._mixture > 1:
            lines = drawn["mixture"]
            self.mixture_src.data = {
                "xs": [line["x"] for line in lines],
                "ys": [line["y"] for line in lines],
                "colour": list(GENERATOR_COLOURS[1:generators]),
            }
            self._mixture = generators
        if self.arrows:
            self.push_src.data = drawn["push"]
            self.grid_arrow_src.data = drawn["grid_arrows"]

    def show_real(self, drawn: dict) -> None:
        """The real points of a ``drawing`` (sent only when they change: only with the
        settings)."""
        if drawn["real_digest"] != self._real:
            self._real = drawn["real_digest"]
            self.real_src.data = drawn["real"]

    def show_scale_title(self, loss: str) -> None:
        """The colour bar's title: what the critic's colours mean for ``loss``."""
        title = critic_scale(loss)[0]
        if self.figure.width < 400:  # a small map's bar has room for the words only
            title = title.split(" (")[0]
        if self.colorbar.title != title:
            self.colorbar.title = title

    def _critic_image(self, critic: np.ndarray, loss: str, scale_id) -> np.ndarray:
        """The (centred) critic grid, its colour range set."""
        if scale_id != self.scale_id:
            self.scale_id = scale_id
            self.scale_range = None
            self.show_scale_title(loss)
        lo, hi = critic_range(critic, loss, self.scale_range)
        if (lo, hi) != self.scale_range:
            self.scale_range = (lo, hi)
            self.mapper.update(low=lo, high=hi)
        return critic


def _image_data(image: np.ndarray, extent: float) -> dict:
    e = extent
    return {"image": [image], "x": [-e], "y": [-e], "dw": [2 * e], "dh": [2 * e]}


class LabPlots:
    """Every figure of the lab and the sources that feed them."""

    def __init__(self, extent: float = 3.5):
        self.extent = extent
        self.run_id = None
        self._build_field(extent)
        self._build_draw()
        self._build_manifold(extent)
        self._build_curves()
        self._build_hist()
        self._build_markers()
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
        for chart in self._charts:
            self._hold_ranges(chart)

    # ------------------------------------------------------------------ build
    def _build_field(self, extent):
        self.presenting = False
        self.field_map = CriticMap(extent, FIELD_TITLES[False, False])
        self.field = self.field_map.figure
        self.field_view = self.field_map.view
        self.real_src = self.field_map.real_src
        self.fake_src = self.field_map.fake_src
        self.grid_arrow_src = self.field_map.grid_arrow_src
        self.colorbar = self.field_map.colorbar

    def _build_draw(self):
        """Draw mode on the map: a click adds a point, a drag draws a stroke whose
        vertices become points. Off until ``set_drawing(True)``; the points stay in the
        page (``drawn_src``, ``stroke_src``) until the lab takes them."""
        fig = self.field
        self.drawn_src = ColumnDataSource({"x": [], "y": []}, name="drawn")
        self.stroke_src = ColumnDataSource({"xs": [], "ys": []}, name="strokes")
        points = fig.scatter(
            "x", "y", source=self.drawn_src, size=8, color=DRAWN, line_color="white"
        )
        strokes = fig.multi_line(
            "xs", "ys", source=self.stroke_src, line_width=3, color=DRAWN, alpha=0.85
        )
        self.stroke_tool = FreehandDrawTool(renderers=[strokes], num_objects=0)
        fig.add_tools(self.stroke_tool)
        fig.toolbar_location = None
        fig.toolbar.active_multi = None
        # a click adds a point, in the page (no round trip), only while drawing
        fig.js_on_event(
            "tap",
            CustomJS(
                args={"src": self.drawn_src, "tool": self.stroke_tool},
                code="""
                if (!tool.active) return;
                const d = src.data;
                src.data = {x: [...d.x, cb_obj.x], y: [...d.y, cb_obj.y]};
                """,
            ),
        )
        self._draw_renderers = (points, strokes)
        for renderer in self._draw_renderers:
            renderer.visible = False

    def set_drawing(self, on: bool) -> None:
        """Draw mode on or off (the drawn points show only while it is on)."""
        self.field.toolbar.active_multi = self.stroke_tool if on else None
        for renderer in self._draw_renderers:
            renderer.visible = on

    def drawn_points(self) -> np.ndarray:
        """The points drawn so far: the clicks, then every stroke's vertices."""
        xs = list(self.drawn_src.data["x"])
        ys = list(self.drawn_src.data["y"])
        for sx, sy in zip(self.stroke_src.data["xs"], self.stroke_src.data["ys"], strict=True):
            xs.extend(sx)
            ys.extend(sy)
        return np.array([xs, ys], dtype=np.float64).T.reshape(-1, 2)

    def clear_drawing(self) -> None:
        self.drawn_src.data = {"x": [], "y": []}
        self.stroke_src.data = {"xs": [], "ys": []}

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
        dots(fig, self.real_src, REAL, 0.35)
        # rows and columns of the mapped grid, each one NaN-separated polyline (two buffers)
        self.manifold_src = ColumnDataSource({"rx": [], "ry": [], "cx": [], "cy": []})
        fig.line("rx", "ry", source=self.manifold_src, color=MANIFOLD_ROWS, line_width=1.2)
        fig.line("cx", "cy", source=self.manifold_src, color=MANIFOLD_COLS, line_width=1.2)
        fig.axis.visible = False  # the same square as the map beside it
        self.manifold = style_figure(fig)

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
        fig = _line_figure(MODES_TITLE, "modes")
        fig.y_range = Range1d(0, 8.5)
        fig.extra_y_ranges = {"hq": Range1d(0, 100)}
        fig.add_layout(LinearAxis(y_range_name="hq", axis_label="HQ %"), "right")
        modes_style = {"color": MODES_COLOUR, "width": 2}
        hq_style = {"color": HQ_COLOUR, "width": 2}
        fig.line("step", "modes", source=self.mode_src, **modes_style)
        fig.line("step", "hq", source=self.mode_src, y_range_name="hq", **hq_style)
        static_legend(fig, [("modes", modes_style), ("HQ %", hq_style)])
        self.modes = fig

        self.sw1_src = ColumnDataSource({"step": [], "sliced_w1": []})
        self.w1_src = ColumnDataSource({"step": [], "w1": []})
        fig = _line_figure("Wasserstein-1 to the real data", "W1")
        sliced_style = {"color": SLICED_W1_COLOUR, "width": 1.5}
        exact_style = {"color": EXACT_W1_COLOUR, "width": 2.5}
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

    def _build_markers(self):
        """A vertical line on every curve chart at the step a replayed frame shows."""
        self.markers = []
        for fig in (self.losses, self.grads, self.modes, self.w1):
            span = Span(
                location=0, dimension="height", line_color="#e8590c", line_width=2,
                line_dash="dashed", visible=False,
            )  # fmt: skip
            fig.add_layout(span)
            self.markers.append(span)

    def mark_step(self, step: int | None) -> None:
        """Mark ``step`` on the curves (None: no mark)."""
        for span in self.markers:
            if step is None:
                span.visible = False
            else:
                span.update(location=step, visible=True)

    def show_still(self, frame: Frame, visible: dict[str, bool]) -> None:
        """Draw a kept frame (the timeline): map, manifold and histogram as they were,
        the curves marked at its step; nothing is added to the curves."""
        drawn = frame_drawing(frame)
        if visible.get("field", True):
            self.field_map.show(
                frame.snap, frame.config.loss, frame.scale_id, frame.extent,
                frame.config.n_generators, drawn,
            )  # fmt: skip
        if visible.get("manifold", True):
            self.manifold_src.data = drawn["manifold"]
        if visible.get("hist", True):
            self._draw_hist(frame.hist)
        self.mark_step(frame.step)

    def curve_history(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every curve as (steps, values), with the points not yet sent (for export)."""
        out = {}
        for src, rows in self._rows.items():
            columns = {k: list(v) for k, v in src.data.items()}
            for row in rows:
                for key, value in zip(src.data, row, strict=True):
                    columns[key].append(value)
            steps = np.asarray(columns.pop("step"), np.float64)
            for key, values in columns.items():
                out[key] = (steps, np.asarray(values, np.float64))
        return out

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

    def fed_models(self) -> dict[str, tuple]:
        """The models a frame changes, by name, with the properties it changes (see
        ``gan2d.ui.feed``). The titles of the map and its colour bar are not among them:
        they depend on the page too (``show_titles``)."""
        fm = self.field_map
        fed = {
            "critic": (fm.critic_src, ("data",)),
            "mapper": (fm.mapper, ("low", "high")),
            "real": (fm.real_src, ("data",)),
            "fake": (fm.fake_src, ("data",)),
            "mixture": (fm.mixture_src, ("data",)),
            "push": (fm.push_src, ("data",)),
            "grid-arrows": (fm.grid_arrow_src, ("data",)),
            "manifold": (self.manifold_src, ("data",)),
            "hist": (self.hist_src, ("data",)),
            "modes-title": (self.modes.title, ("text",)),
        }
        for src in self._rows:
            fed[f"curve-{'-'.join(src.data)}"] = (src, ("data",))
        figures = {"field": self.field, "manifold": self.manifold}
        figures.update((chart, self._chart(chart)) for chart in self._charts)
        for name, fig in figures.items():
            fed[f"{name}-x"] = (fig.x_range, ("start", "end"))
            fed[f"{name}-y"] = (fig.y_range, ("start", "end"))
        return fed

    def copy_from(self, other: LabPlots) -> None:
        """Show what ``other`` shows (the same fed models' values, colour scale, run and
        curve points not yet sent): Bokeh sends this page what differs."""
        mine = self.fed_models()
        for key, (model, attrs) in other.fed_models().items():
            for attr in attrs:
                value = getattr(model, attr)
                if attr == "data":  # a copy: streams into one must not grow the other
                    value = {k: np.array(v) if isinstance(v, np.ndarray) else list(v)
                             for k, v in value.items()}  # fmt: skip
                setattr(mine[key][0], attr, value)
        self.run_id, self.extent, self._hist = other.run_id, other.extent, other._hist
        self._flushed = dict(other._flushed)
        for rows, theirs in zip(self._rows.values(), other._rows.values(), strict=True):
            rows[:] = theirs
        fm, theirs = self.field_map, other.field_map
        fm.extent, fm.scale_id, fm.scale_range = theirs.extent, theirs.scale_id, theirs.scale_range
        fm._real, fm._mixture = theirs._real, theirs._mixture

    def set_presenting(self, on: bool, size: int) -> None:
        """The presenter view's map (see ``CriticMap.set_presenting``) and its title."""
        self.presenting = on
        self.field_map.set_presenting(on, size)
        mixture = "generator" in self.field.title.text and "orange" not in self.field.title.text
        self.field.title.text = FIELD_TITLES[mixture, on]

    def set_extent(self, extent: float) -> None:
        """New view square (dataset or radius changed): not per frame."""
        self.extent = extent
        self.field_map.set_extent(extent)
        self.manifold.x_range.update(start=-extent, end=extent)
        self.manifold.y_range.update(start=-extent, end=extent)

    def clear_curves(self) -> None:
        for src, rows in self._rows.items():
            src.data = {k: [] for k in src.data}
            rows.clear()
        for chart in self._chart_sources:
            self._hold_ranges(chart)

    def _chart(self, chart: str):
        return {"losses": self.losses, "grads": self.grads, "modes": self.modes, "w1": self.w1,
                "hist": self.hist}[chart]  # fmt: skip

    def _hold_ranges(self, chart: str) -> None:
        hold_ranges(self._chart(chart), y=chart != "modes", log=chart == "grads")

    def _fit_ranges(self, chart: str) -> None:
        fig = self._chart(chart)
        if chart == "hist":
            data = self.hist_src.data
            fit_ranges(fig, [data["left"], data["right"]], [[0.0], data["real"], data["fake"]])
            return
        sources = self._chart_sources[chart]
        xs = [src.data["step"] for src in sources]
        ys = [src.data[k] for src in sources for k in src.data if k != "step"]
        fit_ranges(fig, xs, None if chart == "modes" else ys, log=chart == "grads")

    def update(self, frame: Frame, visible: dict[str, bool]) -> None:
        """Feed one frame. Hidden heavy plots are skipped; curves always stream.

        Bokeh's check of each value set is off meanwhile (its documented switch for
        callbacks that update data): the values are the app's own, of known types, and
        checking them again on every frame of every page costs the event loop time."""
        with validate(False):
            self._update(frame, visible)

    def _update(self, frame: Frame, visible: dict[str, bool]) -> None:
        snap = frame.snap
        if frame.run_id != self.run_id:
            self.run_id = frame.run_id
            self.clear_curves()
        if abs(frame.extent - self.extent) > 1e-9:
            self.set_extent(frame.extent)
        self.show_titles(frame, visible)
        drawn = frame_drawing(frame)
        if visible.get("field", True):
            self.field_map.show(
                snap,
                frame.config.loss,
                frame.scale_id,
                frame.extent,
                frame.config.n_generators,
                drawn,
            )
        else:
            self.field_map.show_real(drawn)  # the manifold draws them too
        if visible.get("manifold", True):
            self.manifold_src.data = drawn["manifold"]
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

    def show_titles(self, frame: Frame, visible: dict[str, bool]) -> None:
        """The map's title and its colour bar's, which depend on the page (a presenter's
        map is smaller) as well as on the frame."""
        if visible.get("field", True):
            title = FIELD_TITLES[frame.config.n_generators > 1, self.presenting]
            if self.field.title.text != title:
                self.field.title.text = title
            self.field_map.show_scale_title(frame.config.loss)

    def _flush(self, chart: str) -> None:
        if chart == "hist":
            if self._hist is not None:
                self._draw_hist(self._hist)
            return
        streamed = False
        for src in self._chart_sources[chart]:
            rows = self._rows[src]
            if rows:
                new = dict(zip(src.data, map(list, zip(*rows, strict=True)), strict=True))
                if len(src.data["step"]):
                    src.stream(new, ROLLOVER)
                else:  # numpy columns: streamed onto in C, and ranged without a copy
                    src.data = {k: np.asarray(v, np.float64) for k, v in new.items()}
                rows.clear()
                streamed = True
        if streamed:
            self._fit_ranges(chart)

    def _draw_hist(self, hist: dict) -> None:
        # small: plain lists travel inside the JSON message, with no binary buffers
        self.hist_src.data = {k: np.asarray(v).tolist() for k, v in hist.items()}
        self._fit_ranges("hist")

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
        title = MODES_TITLE if "live_modes" in snap else NO_MODES_TITLE
        if self.modes.title.text != title:
            self.modes.title.text = title
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


def push_segments(snap: dict, extent: float) -> np.ndarray:
    """(n, 2, 2) segments: where the generator's loss pushes each fake point."""
    fake = snap["fake"]
    return _segments(fake, _arrow_ends(fake, snap["fake_uv"], 0.5 * extent / 16))


def grid_arrows(snap: dict, extent: float) -> np.ndarray:
    """(m, 5, 2) arrows (shaft and head) of the push on the coarse grid."""
    starts = snap["arrow_xy"]
    return _arrows(starts, _arrow_ends(starts, snap["arrow_uv"], 0.9 * extent / 16))


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


def drawing(
    snap: dict,
    loss: str,
    extent: float,
    generators: int = 1,
    z_dim: int | None = None,
    arrows: bool = True,
) -> dict:
    """The arrays a snapshot's plots draw, as Bokeh sends them: the critic grid
    (centred), the real points (and a digest of them: they change only with the
    settings), each generator's points, the pushes (``arrows``) and, given the
    generator's ``z_dim``, the manifold. Numpy work on the snapshot alone: a lab's run
    does it as it makes the frame (``lab_drawing``, in its trainer), so that the event
    loop, which serves every page, only hands the arrays to Bokeh. (Each numpy call that
    lets go of Python's lock there may wait for a worker to give it back.)"""
    fake, real = snap["fake"], np.ascontiguousarray(snap["real"])
    drawn = {
        "critic": np.ascontiguousarray(centred_critic(snap["critic"], loss)),
        "real": dot_data(real),
        "real_digest": hashlib.blake2b(real.tobytes(), digest_size=16).digest(),
        "fake": dot_data(fake[::generators]),
        "mixture": [dot_data(fake[i::generators]) for i in range(1, generators)],
    }
    if arrows:
        drawn["push"] = _polyline(push_segments(snap, extent))
        drawn["grid_arrows"] = _polyline(grid_arrows(snap, extent))
    if z_dim is not None:
        drawn["manifold"] = manifold_lines(snap["manifold"], z_dim == 1)
    return drawn


def lab_drawing(snap: dict, config: Config, extent: float) -> dict:
    """The ``drawing`` of a lab's snapshot, taken with ``config`` in a view of ``extent``."""
    return drawing(snap, config.loss, extent, config.n_generators, config.z_dim)


def frame_drawing(frame: Frame) -> dict:
    """A lab frame's ``drawing``: the one made with the frame (``Frame.drawn``), or a
    new one (a replayed frame keeps only its snapshot)."""
    if frame.drawn is not None:
        return frame.drawn
    return lab_drawing(frame.snap, frame.config, frame.extent)


def dot_data(points: np.ndarray) -> dict:
    """Columns that draw each point as a zero-length segment (see ``dots``)."""
    return _polyline(_segments(points, points))


def _polyline(pieces: np.ndarray) -> dict:
    """(n, k, 2) pieces -> one NaN-separated polyline's columns."""
    n, k, _ = pieces.shape
    gap = np.full((n, 1, 2), np.nan, np.float32)
    flat = np.concatenate([pieces.astype(np.float32), gap], axis=1).reshape(n * (k + 1), 2)
    return {"x": np.ascontiguousarray(flat[:, 0]), "y": np.ascontiguousarray(flat[:, 1])}


def manifold_lines(points: np.ndarray, is_line: bool) -> dict:
    """Rows and columns of the mapped latent grid as NaN-separated polylines
    (a single line when z_dim = 1)."""
    points = np.asarray(points, np.float32)
    n = int(round(np.sqrt(len(points))))
    if is_line or n * n != len(points):
        empty = np.zeros(0, np.float32)
        line = np.ascontiguousarray(points.T)
        return {"rx": line[0], "ry": line[1], "cx": empty, "cy": empty}
    grid = points.reshape(n, n, 2)
    rows, cols = _polyline(grid), _polyline(grid.transpose(1, 0, 2))
    # a ColumnDataSource needs equal lengths: rows and columns have the same count
    return {"rx": rows["x"], "ry": rows["y"], "cx": cols["x"], "cy": cols["y"]}
