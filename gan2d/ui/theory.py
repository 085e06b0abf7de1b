"""The "Theory" tab: four toy problems that show, exactly, why GANs are hard to train.

Every number comes from `gan2d.theory` (tested there). Figures are built once; a control
change only replaces `ColumnDataSource.data`.
"""

from __future__ import annotations

import math

import numpy as np
import panel as pn
import param
from bokeh.models import Arrow, ColumnDataSource, NormalHead, Range1d
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from gan2d import theory
from gan2d.ui.widgets import param_controls

FIG_STYLE = {"height": 380, "sizing_mode": "stretch_width", "toolbar_location": "above"}
TEXT_STYLE = {"font-size": "1.15em", "line-height": "1.45"}
XY_COLORS = dict(zip(theory.XY_METHODS, Category10_10, strict=False))
DIST_FLOOR = 1e-16  # log-scale plots cannot show 0; smaller distances are drawn here
VIEW_BOX = 3.0  # phase plots show [-3, 3]^2: runs that leave it are diverging

XY_TEXT = """**The xy game: min over x, max over y of x·y.** The only equilibrium is (0, 0),
yet plain simultaneous gradient steps spiral away from it: the radius grows by exactly
√(1 + lr²) every step. Alternating steps circle it forever; extragradient, optimistic and
consensus steps are the fixes that actually arrive."""

DIRAC_TEXT = """**Dirac-GAN** (Mescheder et al. 2018): the data is a single point at 0, the
generator a single point θ, and the critic a line D(x) = ψ·x. Without regularisation the
arrows circle the equilibrium (0, 0), so training orbits or spirals; an R1 penalty or
instance noise bends the arrows inwards and training converges."""

DIV_TEXT = """**Divergences of a shifted copy.** A generator learns from the slope of the
divergence with respect to its shift. When the two distributions do not overlap, JS is
stuck at log 2 (slope 0: nothing to learn) and KL is infinite, while the Wasserstein
distance W1 keeps a slope of 1 however far apart they are."""

KL_TEXT = """**Forward vs reverse KL.** Fitting one Gaussian to two modes by KL(p‖q)
stretches it over both modes, putting mass where there is no data (blurry, but diverse).
Fitting by KL(q‖p) locks it onto one mode (sharp, but a mode is dropped): mode collapse
in one dimension."""


def _text(markdown: str) -> pn.pane.Markdown:
    return pn.pane.Markdown(markdown, styles=TEXT_STYLE, sizing_mode="stretch_width")


def _fmt(value) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:.4g}"


def _fixed(value: float) -> str:
    """Three decimals, without a "-0.000" for a value that is zero up to rounding."""
    return f"{round(value, 3) + 0.0:.3f}"


def _phase_figure(title: str, x_label: str, y_label: str):
    fig = figure(
        title=title,
        x_range=Range1d(-VIEW_BOX, VIEW_BOX),
        y_range=Range1d(-VIEW_BOX, VIEW_BOX),
        match_aspect=True,
        **FIG_STYLE,
    )
    fig.xaxis.axis_label, fig.yaxis.axis_label = x_label, y_label
    fig.scatter([0], [0], marker="star", size=16, color="black", legend_label="equilibrium")
    return fig


def _distance_figure(title: str):
    fig = figure(title=title, y_axis_type="log", **FIG_STYLE)
    fig.xaxis.axis_label = "step"
    fig.yaxis.axis_label = "distance from (0, 0)"
    return fig


def _finite_for_plot(values) -> np.ndarray:
    """NaN where a value is infinite or undefined: Bokeh leaves a gap there."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return arr


class TheoryLab(param.Parameterized):
    """Controls of the Theory tab, and the data sources its figures draw."""

    xy_method = param.Selector(
        default="simultaneous", objects=list(theory.XY_METHODS), label="Method (dots)"
    )
    xy_lr = param.Number(0.1, bounds=(0.01, 0.5), step=0.01, label="Learning rate")
    xy_steps = param.Integer(300, bounds=(10, 3000), step=10, label="Steps")
    xy_gamma = param.Number(1.0, bounds=(0.0, 5.0), step=0.1, label="Consensus weight γ")
    xy_x0 = param.Number(1.0, bounds=(-2.0, 2.0), step=0.1, label="Start x")
    xy_y0 = param.Number(1.0, bounds=(-2.0, 2.0), step=0.1, label="Start y")

    dirac_loss = param.Selector(default="minimax", objects=list(theory.DIRAC_LOSSES), label="Loss")
    dirac_reg = param.Selector(default="none", objects=list(theory.DIRAC_REGS), label="Regulariser")
    dirac_reg_weight = param.Number(
        1.0, bounds=(0.0, 3.0), step=0.05, label="R1 weight γ / noise std σ"
    )
    dirac_method = param.Selector(
        default="simultaneous", objects=list(theory.DIRAC_METHODS), label="Updates"
    )
    dirac_lr = param.Number(0.1, bounds=(0.01, 0.5), step=0.01, label="Learning rate")
    dirac_steps = param.Integer(500, bounds=(10, 3000), step=10, label="Steps")
    dirac_theta0 = param.Number(1.0, bounds=(-2.0, 2.0), step=0.1, label="Start θ (generator)")
    dirac_psi0 = param.Number(1.0, bounds=(-2.0, 2.0), step=0.1, label="Start ψ (critic)")

    div_pair = param.Selector(
        default="gaussians", objects=list(theory.DIVERGENCE_PAIRS), label="Distributions"
    )
    div_shift = param.Number(2.0, bounds=(-6.0, 6.0), step=0.1, label="Shift s")
    div_sigma = param.Number(0.5, bounds=(0.1, 2.0), step=0.05, label="Gaussian std σ")

    kl_mode_mean = param.Number(2.0, bounds=(0.5, 4.0), step=0.1, label="Modes at ±")
    kl_mode_std = param.Number(0.5, bounds=(0.2, 1.5), step=0.05, label="Mode std")
    kl_weight = param.Number(0.5, bounds=(0.1, 0.9), step=0.05, label="Weight of right mode")
    kl_start = param.Number(0.5, bounds=(-4.0, 4.0), step=0.1, label="Reverse-fit start μ")

    def __init__(self, **params):
        super().__init__(**params)
        self.sources: dict[str, ColumnDataSource] = {}
        self.readouts = {
            name: pn.pane.Markdown("", styles=TEXT_STYLE, sizing_mode="stretch_width")
            for name in ("xy", "dirac", "div", "kl")
        }
        self.figures = {
            "xy": self._build_xy(),
            "dirac": self._build_dirac(),
            "div": self._build_divergences(),
            "kl": self._build_klfit(),
        }
        self.update_xy()
        self.update_dirac()
        self.update_divergence_curves()  # also places the marks
        self.update_klfit()

    # -- figures, built once -------------------------------------------------------------

    def _source(self, name: str, **columns) -> ColumnDataSource:
        self.sources[name] = ColumnDataSource(data=columns)
        return self.sources[name]

    def _build_xy(self):
        paths = _phase_figure("Iterates from the same start", "x (minimiser)", "y (maximiser)")
        dist = _distance_figure("Distance from the equilibrium")
        for method, color in XY_COLORS.items():
            src = self._source(f"xy_{method}", x=[], y=[], step=[], distance=[])
            # optimistic and extragradient nearly coincide: dash one so both stay visible
            dash = "dashed" if method == "optimistic" else "solid"
            paths.line(
                "x", "y", source=src, color=color, line_width=2, line_dash=dash, legend_label=method
            )
            dist.line("step", "distance", source=src, color=color, line_width=2)
        dots = self._source("xy_dots", x=[], y=[])
        paths.scatter("x", "y", source=dots, size=4, color="black", alpha=0.6)
        paths.legend.click_policy = "hide"
        paths.add_layout(paths.legend[0], "right")  # one legend, beside the plot, for both
        return [paths, dist]

    def _build_dirac(self):
        phase = _phase_figure("Gradient field and trajectory", "θ (generator)", "ψ (critic)")
        arrows = self._source("dirac_field", x0=[], y0=[], x1=[], y1=[])
        phase.add_layout(
            Arrow(
                source=arrows,
                x_start="x0",
                y_start="y0",
                x_end="x1",
                y_end="y1",
                line_color="#9aa5b1",
                line_width=1.5,
                end=NormalHead(size=6, fill_color="#9aa5b1", line_color="#9aa5b1"),
            )
        )
        path = self._source("dirac_path", x=[], y=[], step=[], distance=[])
        phase.line("x", "y", source=path, color="#d62728", line_width=2.5, legend_label="training")
        ends = self._source("dirac_ends", x=[], y=[], color=[], label=[])
        phase.scatter("x", "y", source=ends, color="color", size=10, legend_field="label")
        phase.add_layout(phase.legend[0], "right")
        dist = _distance_figure("Distance from the equilibrium")
        dist.line("step", "distance", source=path, color="#d62728", line_width=2.5)
        return [phase, dist]

    def _build_divergences(self):
        values = figure(title="Divergence vs shift", y_range=Range1d(-0.05, 4.0), **FIG_STYLE)
        grads = figure(
            title="Its gradient (what the generator feels)",
            y_range=Range1d(-3.0, 3.0),
            **FIG_STYLE,
        )
        dens = figure(title="P (real) and Q (shifted copy)", **FIG_STYLE)
        curves = self._source(
            "div_curves",
            s=[],
            js=[],
            kl=[],
            reverse_kl=[],
            w1=[],
            js_grad=[],
            kl_grad=[],
            reverse_kl_grad=[],
            w1_grad=[],
        )
        marks = self._source("div_marks", s=[], value=[], grad=[], color=[])
        styles = {
            "js": ("JS", "#1f77b4", "solid"),
            "kl": ("KL", "#d62728", "solid"),
            "reverse_kl": ("reverse KL", "#ff7f0e", "dashed"),
            "w1": ("W1", "#2ca02c", "solid"),
        }
        for key, (label, color, dash) in styles.items():
            values.line(
                "s",
                key,
                source=curves,
                color=color,
                line_width=2.5,
                line_dash=dash,
                legend_label=label,
            )
            grads.line(
                "s",
                f"{key}_grad",
                source=curves,
                color=color,
                line_width=2.5,
                line_dash=dash,
                legend_label=label,
            )
        values.scatter("s", "value", source=marks, color="color", size=10)
        grads.scatter("s", "grad", source=marks, color="color", size=10)
        self._div_colors = [styles[k][1] for k in ("js", "kl", "reverse_kl", "w1")]
        for fig in (values, grads):
            fig.xaxis.axis_label = "shift s"
            fig.legend.location = "top_center"
            fig.legend.click_policy = "hide"
        p_src = self._source("div_p", x=[], y=[])
        q_src = self._source("div_q", x=[], y=[])
        dens.line("x", "y", source=p_src, color="black", line_width=3, legend_label="P")
        dens.line("x", "y", source=q_src, color="#9467bd", line_width=3, legend_label="Q")
        dens.xaxis.axis_label = "x"
        return [values, grads, dens]

    def _build_klfit(self):
        fig = figure(title="One Gaussian fitted to two modes", **FIG_STYLE)
        src = self._source("kl_curves", x=[], p=[], forward=[], reverse=[])
        fig.varea("x", 0, "p", source=src, fill_color="black", fill_alpha=0.15)
        fig.line("x", "p", source=src, color="black", line_width=2.5, legend_label="data p")
        fig.line(
            "x",
            "forward",
            source=src,
            color="#1f77b4",
            line_width=3,
            legend_label="argmin KL(p‖q): covers",
        )
        fig.line(
            "x",
            "reverse",
            source=src,
            color="#d62728",
            line_width=3,
            line_dash="dashed",
            legend_label="argmin KL(q‖p): seeks",
        )
        fig.xaxis.axis_label = "x"
        fig.legend.location = "top_left"
        return [fig]

    # -- updates: only ColumnDataSource.data and readout text change --------------------

    @param.depends("xy_lr", "xy_steps", "xy_gamma", "xy_x0", "xy_y0", "xy_method", watch=True)
    def update_xy(self):
        lines = []
        for method in theory.XY_METHODS:
            pts = theory.xy_trajectory(
                method, self.xy_lr, self.xy_steps, self.xy_x0, self.xy_y0, gamma=self.xy_gamma
            )
            dist = theory.distance_to_origin(pts)
            self.sources[f"xy_{method}"].data = {
                "x": pts[:, 0],
                "y": pts[:, 1],
                "step": np.arange(len(pts)),
                "distance": np.maximum(dist, DIST_FLOOR),
            }
            lines.append(f"| {method} | {_fmt(dist[0])} | {_fmt(dist[-1])} |")
            if method == self.xy_method:
                self.sources["xy_dots"].data = {"x": pts[:, 0], "y": pts[:, 1]}
        growth = math.sqrt(1 + self.xy_lr**2)
        self.readouts["xy"].object = (
            f"Simultaneous radius factor per step: √(1 + lr²) = {growth:.6f}.\n\n"
            f"| method | start distance | after {self.xy_steps} steps |\n|---|---|---|\n"
            + "\n".join(lines)
        )

    def _dirac_field(self, th, ps):
        return theory.dirac_vector_field(
            th, ps, self.dirac_loss, self.dirac_reg, self.dirac_reg_weight
        )

    @param.depends(
        "dirac_loss",
        "dirac_reg",
        "dirac_reg_weight",
        "dirac_method",
        "dirac_lr",
        "dirac_steps",
        "dirac_theta0",
        "dirac_psi0",
        watch=True,
    )
    def update_dirac(self):
        grid = theory.vector_field_grid(self._dirac_field, -2.6, 2.6, 14)
        norm = np.hypot(grid["u"], grid["v"])
        scale = 0.3 / np.maximum(norm, 1e-12)  # equal-length arrows: direction only
        self.sources["dirac_field"].data = {
            "x0": grid["x"],
            "y0": grid["y"],
            "x1": grid["x"] + grid["u"] * scale,
            "y1": grid["y"] + grid["v"] * scale,
        }
        pts = theory.dirac_trajectory(
            loss=self.dirac_loss,
            reg=self.dirac_reg,
            method=self.dirac_method,
            lr=self.dirac_lr,
            steps=self.dirac_steps,
            theta0=self.dirac_theta0,
            psi0=self.dirac_psi0,
            reg_weight=self.dirac_reg_weight,
        )
        dist = theory.distance_to_origin(pts)
        self.sources["dirac_path"].data = {
            "x": pts[:, 0],
            "y": pts[:, 1],
            "step": np.arange(len(pts)),
            "distance": np.maximum(dist, DIST_FLOOR),
        }
        self.sources["dirac_ends"].data = {
            "x": [pts[0, 0], pts[-1, 0]],
            "y": [pts[0, 1], pts[-1, 1]],
            "color": ["#2ca02c", "#d62728"],
            "label": ["start", "end"],
        }
        verdict = "converges" if dist[-1] < 1e-3 * dist[0] else "does not converge"
        self.readouts["dirac"].object = (
            f"Distance from (0, 0): {_fmt(dist[0])} at the start, {_fmt(dist[-1])} after "
            f"{self.dirac_steps} steps: **{verdict}** in this run."
        )

    @param.depends("div_pair", "div_sigma", watch=True)
    def update_divergence_curves(self):
        shifts = np.linspace(-6.0, 6.0, 481)
        rows = [theory.shifted_divergences(self.div_pair, s, self.div_sigma) for s in shifts]
        data = {"s": shifts}
        for key in ("js", "kl", "reverse_kl", "w1"):
            data[key] = _finite_for_plot([r[key] for r in rows])
            data[f"{key}_grad"] = _finite_for_plot([r[f"{key}_grad"] for r in rows])
        self.sources["div_curves"].data = data
        self.update_divergence_marks()

    @param.depends("div_shift", watch=True)
    def update_divergence_marks(self):
        s = self.div_shift
        row = theory.shifted_divergences(self.div_pair, s, self.div_sigma)
        keys = ("js", "kl", "reverse_kl", "w1")
        self.sources["div_marks"].data = {
            "s": [s] * 4,
            "value": _finite_for_plot([row[k] for k in keys]),
            "grad": _finite_for_plot([row[f"{k}_grad"] for k in keys]),
            "color": self._div_colors,
        }
        if self.div_pair == "gaussians":
            x = np.linspace(-7.0, 7.0, 701)
            sd = self.div_sigma
            self.sources["div_p"].data = {"x": x, "y": np.exp(theory.gaussian_logpdf(x, 0, sd))}
            self.sources["div_q"].data = {"x": x, "y": np.exp(theory.gaussian_logpdf(x, s, sd))}
        else:  # a segment {0} x [0, 1] and its copy at x = s, drawn in the plane
            self.sources["div_p"].data = {"x": [0.0, 0.0], "y": [0.0, 1.0]}
            self.sources["div_q"].data = {"x": [s, s], "y": [0.0, 1.0]}
        table = "\n".join(
            f"| {name} | {_fmt(row[k])} | {_fmt(row[f'{k}_grad'])} |"
            for name, k in zip(("JS", "KL", "reverse KL", "W1"), keys, strict=True)
        )
        self.readouts["div"].object = (
            f"At shift s = {s:.2f} (nats; ∞ and undefined slopes are not drawn):\n\n"
            f"| divergence | value | d/ds |\n|---|---|---|\n{table}"
        )

    @param.depends("kl_mode_mean", "kl_mode_std", "kl_weight", "kl_start", watch=True)
    def update_klfit(self):
        fits = theory.kl_fits(self.kl_mode_mean, self.kl_mode_std, self.kl_weight, self.kl_start)
        mix = fits["mixture"]
        fwd, rev = fits["forward"], fits["reverse"]
        x = np.linspace(-7.0, 7.0, 701)
        self.sources["kl_curves"].data = {
            "x": x,
            "p": np.exp(theory.mixture_logpdf(x, mix["weights"], mix["means"], mix["stds"])),
            "forward": np.exp(theory.gaussian_logpdf(x, fwd["mu"], fwd["sigma"])),
            "reverse": np.exp(theory.gaussian_logpdf(x, rev["mu"], rev["sigma"])),
        }
        self.readouts["kl"].object = (
            "| fit | μ | σ | KL(p‖q) | KL(q‖p) |\n|---|---|---|---|---|\n"
            f"| forward | {_fixed(fwd['mu'])} | {_fixed(fwd['sigma'])} | **{_fixed(fwd['kl'])}** "
            f"| {_fixed(fwd['reverse_kl'])} |\n"
            f"| reverse | {_fixed(rev['mu'])} | {_fixed(rev['sigma'])} | {_fixed(rev['kl'])} "
            f"| **{_fixed(rev['reverse_kl'])}** |\n\n"
            "Each fit wins the divergence it minimised (bold) and loses the other one."
        )


def _panel(lab: TheoryLab, text: str, name: str) -> pn.Row:
    """Controls (the parameters named `name`_...) beside the text, figures and readout."""
    params = [p for p in lab.param if p.startswith(f"{name}_")]
    controls = param_controls(lab, params)
    figs = [pn.pane.Bokeh(f, sizing_mode="stretch_width") for f in lab.figures[name]]
    return pn.Row(
        controls,
        pn.Column(
            _text(text),
            pn.Row(*figs, sizing_mode="stretch_width"),
            lab.readouts[name],
            sizing_mode="stretch_width",
        ),
        sizing_mode="stretch_width",
    )


def theory_view(lab: TheoryLab | None = None) -> pn.viewable.Viewable:
    """The Theory tab: xy game, Dirac-GAN, divergences of a shifted copy, KL fits."""
    lab = lab or TheoryLab()
    return pn.Tabs(
        ("xy game", _panel(lab, XY_TEXT, "xy")),
        ("Dirac-GAN", _panel(lab, DIRAC_TEXT, "dirac")),
        ("Divergences", _panel(lab, DIV_TEXT, "div")),
        ("KL vs reverse KL", _panel(lab, KL_TEXT, "kl")),
        dynamic=False,
        sizing_mode="stretch_width",
    )
