"""The "Sweep" tab: are GANs created equal? One preset, one data hyper-parameter over a
list of values, several seeds: every run trains in one batch (``gan2d.core.sweep``),
then the tab shows the samples as small multiples (a column per value, a row per seed)
and a heat map of modes, HQ or W1.

The sweep is a scheduler job (``SweepRun``): a worker trains it a chunk at a time, then
scores it a run at a time, so it shares the machine with the labs. While it trains, the
tab shows its progress and the samples of every run so far (with live mode metrics on
those samples); at the end, the protocol's numbers. Figures are built once: a new
result only replaces ``ColumnDataSource.data`` and the axes' factors.
"""

from __future__ import annotations

import html
import threading

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, FactorRange, LinearColorMapper, Range1d
from bokeh.plotting import figure

from gan2d.core import data, metrics, sweep
from gan2d.core.config import SPECS
from gan2d.core.evaluate import protocol_real
from gan2d.presets import PRESETS, get_preset, live_config
from gan2d.ui.plots import dot_data, dots
from gan2d.ui.scheduler import Job, Scheduler, scheduler
from gan2d.ui.style import (
    CSS,
    FAKE,
    METRIC_PALETTE,
    REAL,
    SIDEBAR_WIDTH,
    style_figure,
)
from gan2d.ui.widgets import Notice, Transport, in_session, param_controls, status_line

SAMPLES_SHOWN = 400  # points per small multiple
HEAT_METRICS = {"modes": "modes", "HQ %": "hq", "W1": "w1"}
CHUNK = 250
PREVIEW_EVERY_CHUNKS = 2
POLL_MS = 200


class SweepRun(Job):
    """A sweep in progress, trained a chunk and scored a run per piece of work."""

    name = "sweep"

    def __init__(self, sweep_: sweep.Sweep, pool: Scheduler | None = None):
        self.sweep = sweep_
        self._lock = threading.Lock()
        self._pool = pool or scheduler()
        self._stopped = False
        self._chunks = 0
        self.preview: np.ndarray | None = None  # (runs, SAMPLES_SHOWN, 2), latest
        self.progress = "compiling..."
        self.result: sweep.SweepResult | None = None
        self.error: str | None = None
        self._pool.add(self)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    def due(self) -> bool:
        with self._lock:
            return not (self._stopped or self.finished)

    def work(self) -> None:
        s = self.sweep
        if not s.trained:
            s.advance()
            self._chunks += 1
            self.progress = f"training {len(s.configs)} runs: step {s.done:,} of {s.steps:,}"
            if self._chunks % PREVIEW_EVERY_CHUNKS == 1 or s.trained:
                self.preview = s.preview(SAMPLES_SHOWN)
        elif not s.evaluated:
            s.evaluate_next()
            self.progress = f"scoring run {len(s.evaluations)} of {len(s.configs)}"
        else:
            self.result = s.result()
        if self.finished:
            self._pool.remove(self)

    def failed(self, error: BaseException) -> None:
        self.error = f"The sweep failed: {type(error).__name__}: {error}"
        self._pool.remove(self)

    def stopped_result(self) -> sweep.SweepResult:
        self._pool.remove(self)
        return self.sweep.result(stopped=True)


class SweepLab(param.Parameterized):
    """State of the Sweep tab; one parameter per control."""

    preset = param.Selector(default="ns-gan", objects=list(PRESETS))
    field = param.Selector(default="lr_d", objects=list(sweep.SWEEPABLE))
    values = param.String(default="3e-5, 1e-4, 3e-4, 1e-3", doc="comma-separated values")
    seeds = param.Integer(default=4, bounds=(1, 32))
    steps = param.Integer(default=1500, bounds=(1, 100_000))
    width = param.Integer(default=live_config(get_preset("ns-gan").config).width, bounds=(4, 1024))
    batch_size = param.Integer(
        default=live_config(get_preset("ns-gan").config).batch_size, bounds=(8, 4096)
    )
    exact_w1 = param.Boolean(default=False, doc="exact W1 on 2,500 points: 1-10 s per run on a CPU")
    heat_metric = param.Selector(default="modes", objects=list(HEAT_METRICS))
    running = param.Boolean(default=False, precedence=-1)
    status = param.String(default="Choose a sweep and press Run sweep.", precedence=-1)

    def __init__(self, pool: Scheduler | None = None, **params):
        super().__init__(**params)
        self._pool = pool
        self.notice = Notice()
        self.job: SweepRun | None = None
        self.result: sweep.SweepResult | None = None
        self._callback = None
        self._shown_preview = None
        self._build_figures()
        self.param.watch(self._fill_heat, ["heat_metric"])

    # ------------------------------------------------------------------ the sweep
    def base_config(self):
        config = get_preset(self.preset).config
        return config.with_changes(width=self.width, batch_size=self.batch_size)

    def start(self) -> None:
        """Check the sweep and hand it to the scheduler; a bad one is refused with a
        message that says why."""
        if self.running:
            return
        try:
            base = self.base_config()
            values = sweep.parse_values(self.field, self.values)
            seeds = list(range(base.seed, base.seed + self.seeds))
            w1 = "exact" if self.exact_w1 else "sliced"
            plan = sweep.Sweep(
                base, {self.field: values}, seeds, self.steps, chunk_size=CHUNK, w1=w1
            )
        except ValueError as err:
            self.status = f"Cannot run: {err}"
            return
        self.result = None
        self.running = True
        self.status = (
            f"compiling one program for {len(plan.configs)} runs ({len(values)} values × "
            f"{len(seeds)} seeds): a few seconds on a CPU..."
        )
        self.job = SweepRun(plan, self._pool)
        if in_session() and self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.poll, period=POLL_MS)

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()

    def poll(self) -> None:
        """Show progress, partial results, or the result once the job is done."""
        job = self.job
        if job is None or not self.running:
            return
        if job.error:
            self.running = False
            self.status = job.error
            return
        if job.result is not None:
            self.running = False
            self.result = job.result
            self.show_result()
            self._report(job.result)
            return
        if not job.due():  # stopped
            self.running = False
            res = job.stopped_result()
            self.status = f"stopped at step {res.steps_done:,} of {res.steps:,}"
            return
        self.status = job.progress
        preview = job.preview
        if preview is not None and preview is not self._shown_preview:
            self._shown_preview = preview
            self.show_samples(job.sweep, preview, live=True)

    def _report(self, res: sweep.SweepResult) -> None:
        t = res.totals()
        self.status = (
            f"{t['runs']} runs × {t['steps']:,} steps in {t['seconds']:.1f} s "
            f"(compile {t['compile_seconds']:.1f} s, scoring {t['eval_seconds']:.1f} s); "
            f"{t['model_steps_per_s']:,.0f} model steps/s; memory estimate "
            f"{t['memory_estimate_mb']:.1f} MiB"
        )

    def close(self) -> None:
        self.stop()
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    # ------------------------------------------------------------------ figures
    def _build_figures(self) -> None:
        self.samples_src = ColumnDataSource({"x": [], "y": []})
        self.real_src = ColumnDataSource({"x": [], "y": []})
        self.frame_src = ColumnDataSource({"x": [], "y": [], "w": [], "h": []})
        fig = figure(
            height=520,
            width=560,
            x_range=Range1d(-1, 1),
            y_range=Range1d(-1, 1),
            tools="pan,wheel_zoom,reset",
        )
        fig.title.text = "samples: a column per value, a row per seed"
        fig.rect("x", "y", "w", "h", source=self.frame_src, fill_alpha=0, line_color="#bbbbbb")
        dots(fig, self.real_src, REAL, 0.35, size=3)
        dots(fig, self.samples_src, FAKE, 0.8, size=3, cap="round")
        fig.axis.visible = False
        fig.grid.visible = False
        self.samples_fig = style_figure(fig)
        self.samples_fig.toolbar_location = "above"

        self.heat_src = ColumnDataSource({"value": [], "seed": [], "v": [], "label": []})
        self.heat_mapper = LinearColorMapper(palette=METRIC_PALETTE, low=0, high=1)
        heat = figure(
            height=520,
            width=520,
            x_range=FactorRange(factors=["–"]),  # placeholders until the first result:
            y_range=FactorRange(factors=["–"]),  # an empty range makes Bokeh warn
            tools="",
            title="final modes",
        )
        heat.rect(
            "value",
            "seed",
            0.95,
            0.95,
            source=self.heat_src,
            fill_color={"field": "v", "transform": self.heat_mapper},
            line_color=None,
        )
        heat.text(
            "value",
            "seed",
            text="label",
            source=self.heat_src,
            text_align="center",
            text_baseline="middle",
            text_color="#212529",
        )
        self.heat_fig = style_figure(heat)

    def show_samples(self, plan, samples: np.ndarray, live: bool) -> None:
        """Small multiples of ``samples`` (runs, n, 2); while ``live``, the heat map
        shows the mode metrics of those samples."""
        field = next(iter(plan.grid))
        values, seeds = plan.grid[field], plan.seeds
        n_seeds = len(seeds)
        config = plan.configs[0]
        extent = data.data_extent(config)
        span = 2.2 * extent
        real = protocol_real(config, SAMPLES_SHOWN // 2)
        xs, ys, rx, ry, fx, fy = [], [], [], [], [], []
        for run in range(len(plan.configs)):
            col, row = divmod(run, n_seeds)
            cx, cy = col * span, -row * span
            pts = samples[run, :SAMPLES_SHOWN]
            keep = np.all(np.abs(pts) < extent, axis=1)  # far outliers would hide others
            xs.append(pts[keep, 0] + cx)
            ys.append(pts[keep, 1] + cy)
            rx.append(real[:, 0] + cx)
            ry.append(real[:, 1] + cy)
            fx.append(cx)
            fy.append(cy)
        self.samples_src.data = dot_data(np.stack([np.concatenate(xs), np.concatenate(ys)], 1))
        self.real_src.data = dot_data(np.stack([np.concatenate(rx), np.concatenate(ry)], 1))
        self.frame_src.data = {"x": fx, "y": fy, "w": [span] * len(fx), "h": [span] * len(fy)}
        # one square around all panels: a column per value, a row per seed
        side = max(len(values), n_seeds) * span / 2
        centre_x, centre_y = (len(values) - 1) * span / 2, -(n_seeds - 1) * span / 2
        self.samples_fig.x_range.update(start=centre_x - side, end=centre_x + side)
        self.samples_fig.y_range.update(start=centre_y - side, end=centre_y + side)
        what = "samples so far" if live else "final samples"
        self.samples_fig.title.text = f"{what}: {field} across, seeds down"
        self.heat_fig.x_range.factors = [f"{v:g}" for v in values]
        self.heat_fig.y_range.factors = [f"seed {s}" for s in reversed(seeds)]
        self.heat_fig.xaxis.axis_label = field
        if live:
            means = data.mode_means(config)
            scores = [
                metrics.mode_metrics(s, means, config.data_std)
                if means is not None and np.isfinite(s).all()
                else {}
                for s in samples
            ]
            self._heat(plan, scores, f"live {self.heat_metric} ({SAMPLES_SHOWN} samples)")

    def show_result(self) -> None:
        """Fill the small multiples and the heat map from ``self.result``."""
        res = self.result
        if res is None:
            return
        self.show_samples(res, res.samples, live=False)
        self._fill_heat()

    def _fill_heat(self, *_) -> None:
        res = self.result
        if res is None:
            return
        kind = " (sliced)" if self.heat_metric == "W1" and res.w1_kind == "sliced" else ""
        self._heat(res, res.run_metrics, f"final {self.heat_metric}{kind} per run")

    def _heat(self, plan, run_metrics: list[dict], title: str) -> None:
        name = HEAT_METRICS[self.heat_metric]
        field = next(iter(plan.grid))
        values = [f"{v:g}" for v in plan.grid[field]]
        n_seeds = len(plan.seeds)
        flat = np.array([np.nan if m.get(name) is None else float(m[name]) for m in run_metrics])
        cols, rows = np.divmod(np.arange(len(flat)), n_seeds)
        fmt = "{:.0f}" if name == "modes" else "{:.1f}" if name == "hq" else "{:.3f}"
        self.heat_src.data = {
            "value": [values[c] for c in cols],
            "seed": [f"seed {plan.seeds[r]}" for r in rows],
            "v": flat,
            "label": ["–" if not np.isfinite(v) else fmt.format(v) for v in flat],
        }
        finite = flat[np.isfinite(flat)]
        if name == "modes":
            means = data.mode_means(plan.configs[0])
            low, high = 0.0, float(len(means) if means is not None else 1)
        elif name == "hq":
            low, high = 0.0, 100.0
        else:
            low, high = 0.0, float(finite.max()) if finite.size else 1.0
        self.heat_mapper.update(low=low, high=high)
        self.heat_fig.title.text = title


def sweep_view(lab: SweepLab | None = None) -> pn.viewable.Viewable:
    """The Sweep tab: controls, run / stop, small multiples and a heat map."""
    lab = lab or SweepLab()
    transport = Transport(
        on_play=lab.start, on_pause=lab.stop, play_label="Run sweep", pause_label="Stop"
    )
    lab.param.watch(lambda e: setattr(transport, "playing", e.new), "running")
    controls = param_controls(
        lab,
        [
            "preset",
            "field",
            "values",
            "seeds",
            "steps",
            "width",
            "batch_size",
            "exact_w1",
            "heat_metric",
        ],
    )

    def helped(field: str) -> str:
        return f"{field}: {SPECS[field].doc}"

    help_text = status_line(helped(lab.field), width=SIDEBAR_WIDTH)
    lab.param.watch(lambda e: setattr(help_text, "value", html.escape(helped(e.new))), "field")
    status = status_line(lab.status, css_classes=["gan2d-status"], width=900)
    lab.param.watch(lambda e: setattr(status, "value", html.escape(e.new)), "status")
    if in_session():
        pn.state.on_session_destroyed(lambda _ctx: lab.close())
    return pn.Row(
        pn.Column(transport, controls, help_text),
        pn.Column(
            status,
            lab.notice.pane,
            pn.Row(pn.pane.Bokeh(lab.samples_fig), pn.pane.Bokeh(lab.heat_fig)),
        ),
        stylesheets=[CSS],
        name="Sweep",
    )
