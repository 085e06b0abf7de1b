"""The lab's Bokeh figures: built once per session, then fed frame by frame.

Per frame only ``ColumnDataSource.data`` changes (and curves ``stream`` with a
rollover); figures, titles and layouts are never rebuilt. The critic's colour scale is
fixed per run so a colour means the same thing over time.
"""

from __future__ import annotations

import numpy as np
from bokeh.models import (
    Arrow,
    ColorBar,
    ColumnDataSource,
    HoverTool,
    LinearAxis,
    LinearColorMapper,
    Range1d,
    VeeHead,
)
from bokeh.plotting import figure
from lab_runner import Frame

REAL = "#1b1b1b"
FAKE = "#e8590c"
D_COLOUR = "#1c7ed6"
G_COLOUR = "#e8590c"
ROLLOVER = 3000
FONT = "13pt"


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


def _line_figure(title, y_label, y_type="linear", height=230):
    fig = figure(
        title=title,
        height=height,
        sizing_mode="stretch_width",
        y_axis_type=y_type,
        x_axis_label="step",
        y_axis_label=y_label,
        tools="",
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

    # ------------------------------------------------------------------ build
    def _build_field(self, extent):
        e = extent
        fig = figure(
            title="Real (black) vs generated (orange) on the critic's map",
            x_range=Range1d(-e, e),
            y_range=Range1d(-e, e),
            height=560,
            width=620,
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
        self.colorbar = ColorBar(
            color_mapper=self.mapper,
            title="D(x) = P(real)",
            title_text_font_size="11pt",
            major_label_text_font_size="10pt",
            width=14,
            location=(0, 0),
        )
        fig.add_layout(self.colorbar, "right")
        self.real_src = ColumnDataSource({"x": [], "y": []})
        self.fake_src = ColumnDataSource({"x": [], "y": [], "x1": [], "y1": []})
        fig.scatter("x", "y", source=self.real_src, size=3, color=REAL, alpha=0.55)
        self.grid_arrow_src = ColumnDataSource({"x0": [], "y0": [], "x1": [], "y1": []})
        self.grid_arrows = Arrow(
            source=self.grid_arrow_src,
            x_start="x0",
            y_start="y0",
            x_end="x1",
            y_end="y1",
            line_color="#495057",
            line_alpha=0.7,
            line_width=1.2,
            end=VeeHead(size=5, fill_color="#495057", line_color="#495057", fill_alpha=0.7),
        )
        fig.add_layout(self.grid_arrows)
        fig.segment(
            "x", "y", "x1", "y1", source=self.fake_src, color=FAKE, alpha=0.45, line_width=1
        )
        fig.scatter(
            "x",
            "y",
            source=self.fake_src,
            size=5,
            fill_color=FAKE,
            line_color="white",
            line_width=0.5,
        )
        self.field = _style(fig)

    def _build_manifold(self, extent):
        e = extent
        fig = figure(
            title="Generator manifold: a latent grid, mapped by G",
            x_range=Range1d(-e, e),
            y_range=Range1d(-e, e),
            height=380,
            width=380,
            match_aspect=True,
            tools="",
        )
        fig.scatter("x", "y", source=self.real_src, size=3, color=REAL, alpha=0.35)
        # rows and columns of the mapped grid, each one NaN-separated polyline (two buffers)
        self.manifold_src = ColumnDataSource({"rx": [], "ry": [], "cx": [], "cy": []})
        fig.line("rx", "ry", source=self.manifold_src, color="#5f3dc4", line_width=1.2)
        fig.line("cx", "cy", source=self.manifold_src, color="#0c8599", line_width=1.2)
        self.manifold = _style(fig)

    def _build_curves(self):
        self.loss_src = ColumnDataSource({"step": [], "d_loss": [], "g_loss": []})
        fig = _line_figure("Losses", "loss")
        fig.line("step", "d_loss", source=self.loss_src, color=D_COLOUR, width=2, legend_label="D")
        fig.line("step", "g_loss", source=self.loss_src, color=G_COLOUR, width=2, legend_label="G")
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "11pt"
        self.losses = fig

        self.grad_src = ColumnDataSource({"step": [], "d_grad": [], "g_grad": []})
        fig = _line_figure("Gradient norms (log): vanishing shows here", "‖∇‖", y_type="log")
        fig.line("step", "d_grad", source=self.grad_src, color=D_COLOUR, width=2, legend_label="D")
        fig.line("step", "g_grad", source=self.grad_src, color=G_COLOUR, width=2, legend_label="G")
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "11pt"
        self.grads = fig

        self.mode_src = ColumnDataSource({"step": [], "modes": [], "hq": []})
        fig = _line_figure("Modes covered and HQ share (live, 512 samples)", "modes")
        fig.y_range = Range1d(0, 8.5)
        fig.extra_y_ranges = {"hq": Range1d(0, 100)}
        fig.add_layout(LinearAxis(y_range_name="hq", axis_label="HQ %"), "right")
        fig.line(
            "step", "modes", source=self.mode_src, color="#2b8a3e", width=2, legend_label="modes"
        )
        fig.line(
            "step",
            "hq",
            source=self.mode_src,
            y_range_name="hq",
            color="#862e9c",
            width=2,
            legend_label="HQ %",
        )
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "11pt"
        self.modes = fig

        self.sw1_src = ColumnDataSource({"step": [], "sliced_w1": []})
        self.w1_src = ColumnDataSource({"step": [], "w1": []})
        fig = _line_figure("Wasserstein-1 to the real data", "W1")
        fig.line(
            "step",
            "sliced_w1",
            source=self.sw1_src,
            color="#868e96",
            width=1.5,
            legend_label="sliced (every frame)",
        )
        fig.line(
            "step",
            "w1",
            source=self.w1_src,
            color="#212529",
            width=2.5,
            legend_label="exact (256 points)",
        )
        fig.legend.location = "top_right"
        fig.legend.label_text_font_size = "11pt"
        self.w1 = fig

    def _build_hist(self):
        self.hist_src = ColumnDataSource({"left": [], "right": [], "real": [], "fake": []})
        fig = _line_figure("D(real) vs D(fake)", "share of points")
        fig.xaxis.axis_label = "D(x)"
        fig.quad(
            left="left",
            right="right",
            bottom=0,
            top="real",
            source=self.hist_src,
            fill_color=REAL,
            fill_alpha=0.45,
            line_color=None,
            legend_label="real",
        )
        fig.quad(
            left="left",
            right="right",
            bottom=0,
            top="fake",
            source=self.hist_src,
            fill_color=FAKE,
            fill_alpha=0.55,
            line_color=None,
            legend_label="generated",
        )
        fig.legend.location = "top_center"
        fig.legend.label_text_font_size = "11pt"
        fig.add_tools(HoverTool(tooltips=[("real", "@real{0.000}"), ("fake", "@fake{0.000}")]))
        self.hist = fig

    # ------------------------------------------------------------------ per frame
    def figures(self) -> dict:
        return {
            "field": self.field,
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
        for src in (self.loss_src, self.grad_src, self.mode_src, self.sw1_src, self.w1_src):
            src.data = {k: [] for k in src.data}

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
        if not _same(self.real_src.data["x"], real[:, 0]):  # the real sample rarely changes
            self.real_src.data = {"x": real[:, 0], "y": real[:, 1]}
        if visible.get("field", True):
            self.critic_src.data = {
                "image": [self._critic_image(frame)],
                "x": [-e],
                "y": [-e],
                "dw": [2 * e],
                "dh": [2 * e],
            }
            fake = snap["fake"]
            ends = _arrow_ends(fake, snap["fake_uv"], 0.5 * e / 16)
            self.fake_src.data = {
                "x": fake[:, 0],
                "y": fake[:, 1],
                "x1": ends[:, 0],
                "y1": ends[:, 1],
            }
            starts = snap["arrow_xy"]
            ends = _arrow_ends(starts, snap["arrow_uv"], 0.9 * e / 16)
            if not _same(self.grid_arrow_src.data["x0"], starts[:, 0]):
                self.grid_arrow_src.data = {
                    "x0": starts[:, 0],
                    "y0": starts[:, 1],
                    "x1": ends[:, 0],
                    "y1": ends[:, 1],
                }
            else:  # only the ends move: send two columns, not four
                self.grid_arrow_src.data.update(x1=ends[:, 0], y1=ends[:, 1])
        if visible.get("manifold", True):
            self.manifold_src.data = _manifold_lines(snap["manifold"], frame.config.z_dim == 1)
        if visible.get("hist", True):
            # small: plain lists travel inside the JSON message, with no binary buffers
            self.hist_src.data = {k: np.asarray(v).tolist() for k, v in frame.hist.items()}
        self._stream(frame)

    def _stream(self, frame: Frame) -> None:
        step = [frame.step]
        curves = frame.curves
        if curves:
            self.loss_src.stream(
                {"step": step, "d_loss": [curves["d_loss"]], "g_loss": [curves["g_loss"]]},
                rollover=ROLLOVER,
            )
            self.grad_src.stream(
                {
                    "step": step,
                    "d_grad": [max(curves["d_grad_norm"], 1e-12)],
                    "g_grad": [max(curves["g_grad_norm"], 1e-12)],
                },
                rollover=ROLLOVER,
            )
        snap = frame.snap
        if "live_modes" in snap:
            n_modes = len(snap["live_mode_counts"])
            if self.modes.y_range.end != n_modes + 0.5:
                self.set_mode_axis(n_modes)
            self.mode_src.stream(
                {"step": step, "modes": [int(snap["live_modes"])], "hq": [float(snap["live_hq"])]},
                rollover=ROLLOVER,
            )
        self.sw1_src.stream(
            {"step": step, "sliced_w1": [float(snap["sliced_w1"])]}, rollover=ROLLOVER
        )
        if frame.w1 is not None:
            self.w1_src.stream({"step": step, "w1": [frame.w1]}, rollover=ROLLOVER)

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


def _manifold_lines(points: np.ndarray, is_line: bool) -> dict:
    """Rows and columns of the mapped latent grid as NaN-separated polylines
    (a single line when z_dim = 1)."""
    points = np.asarray(points, np.float32)
    n = int(round(np.sqrt(len(points))))
    if is_line or n * n != len(points):
        empty = np.zeros(0, np.float32)
        return {"rx": points[:, 0], "ry": points[:, 1], "cx": empty, "cy": empty}
    grid = points.reshape(n, n, 2)
    gap = np.full((n, 1, 2), np.nan, np.float32)
    rows = np.concatenate([grid, gap], axis=1).reshape(-1, 2)
    cols = np.concatenate([grid.transpose(1, 0, 2), gap], axis=1).reshape(-1, 2)
    # a ColumnDataSource needs equal lengths: rows and columns have the same count
    return {"rx": rows[:, 0], "ry": rows[:, 1], "cx": cols[:, 0], "cy": cols[:, 1]}
