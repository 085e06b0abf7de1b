"""The "Sweep" tab: are GANs created equal? One preset, one data hyper-parameter over a
list of values, several seeds: every run trains together in one vmapped program
(``gan2d.sweep.run_sweep``), then the tab shows the final samples as small multiples
(a column per value, a row per seed) and a heat map of the final modes, HQ or W1.

The sweep runs in a worker thread; a periodic callback in the session shows its
progress and, at the end, its results. Figures are built once: a new result only
replaces ``ColumnDataSource.data`` and the axes' factors. In tests, ``start`` with
``wait=True`` and ``poll`` drive the same path without a server.
"""

from __future__ import annotations

import threading
from dataclasses import fields

import jax
import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, FactorRange, LinearColorMapper
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from gan2d import data, sweep
from gan2d.config import PRESETS, Config, field_doc, get_preset, parse_value

SAMPLES_SHOWN = 400  # points per small multiple
HEAT_METRICS = {"modes": "modes", "HQ %": "hq", "W1": "w1"}


def _cpu_default(cpu, gpu):
    return cpu if jax.default_backend() == "cpu" else gpu


class SweepLab(param.Parameterized):
    """State of the Sweep tab; one parameter per control."""

    preset = param.Selector(default="ns-gan", objects=list(PRESETS))
    field = param.Selector(default="lr_d", objects=list(sweep.SWEEPABLE))
    values = param.String(default="3e-5, 1e-4, 3e-4, 1e-3", doc="comma-separated values")
    seeds = param.Integer(default=4, bounds=(1, 32))
    steps = param.Integer(default=_cpu_default(1500, 5000), bounds=(1, 100_000))
    width = param.Integer(default=_cpu_default(64, 128), bounds=(4, 1024))
    batch_size = param.Integer(default=_cpu_default(128, 256), bounds=(8, 4096))
    exact_w1 = param.Boolean(default=False, doc="exact W1 on 2,500 points: 1-10 s per run on a CPU")
    heat_metric = param.Selector(default="modes", objects=list(HEAT_METRICS))
    running = param.Boolean(default=False, precedence=-1)
    status = param.String(default="Choose a sweep and press run.", precedence=-1)

    def __init__(self, **params):
        super().__init__(**params)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._progress = ""
        self._finished: sweep.SweepResult | str | None = None
        self._callback = None
        self.result: sweep.SweepResult | None = None
        self._build_figures()

    # ------------------------------------------------------------------ the sweep
    def parsed_values(self) -> tuple:
        types = {f.name: f.type for f in fields(Config)}
        raw = [v.strip() for v in self.values.split(",") if v.strip()]
        if not raw:
            raise ValueError(f"give one or more values for {self.field}, e.g. 1e-4, 1e-3")
        values = tuple(parse_value(self.field, types[self.field], v) for v in raw)
        if len(set(values)) != len(values):
            raise ValueError(f"{self.field}: a value is repeated")
        return values

    def base_config(self):
        config = get_preset(self.preset).config
        return config.with_changes(width=self.width, batch_size=self.batch_size)

    def start(self, wait: bool = False) -> None:
        """Start the sweep in a worker thread (``wait`` joins it, for tests)."""
        if self.running:
            return
        try:
            base, values = self.base_config(), self.parsed_values()
            seeds = list(range(base.seed, base.seed + self.seeds))
            grid = {self.field: values}
            runs = len(sweep.run_configs(base, sweep.grid_cells(grid), seeds))  # validates
            plan = sweep.plan_memory(base, runs)
            if not plan.fits:
                raise ValueError(plan.refusal())
        except ValueError as err:
            self.status = f"**Cannot run:** {err}"
            return
        self._stop.clear()
        self.running = True
        self._progress = (
            f"compiling one program for {runs} runs ({len(values)} values × "
            f"{len(seeds)} seeds): a few seconds on a CPU..."
        )
        self.status = self._progress
        args = (
            base,
            {self.field: values},
            seeds,
            self.steps,
            "exact" if self.exact_w1 else "sliced",
        )
        self._thread = threading.Thread(target=self._work, args=args, daemon=True, name="sweep")
        self._thread.start()
        if pn.state.curdoc is not None and self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.poll, period=200)
        if wait:
            self._thread.join()
            self.poll()

    def stop(self) -> None:
        self._stop.set()

    def _work(self, base, grid, seeds, steps, w1) -> None:
        runs = len(seeds) * len(next(iter(grid.values())))

        def progress(done, total):
            self._progress = f"training {runs} runs: step {done:,} of {total:,}"

        def evaluating(i, total):
            self._progress = f"evaluating run {i} of {total}"

        try:
            result = sweep.run_sweep(
                base,
                grid,
                seeds,
                steps,
                chunk_size=250,
                on_progress=progress,
                should_stop=self._stop.is_set,
                on_eval=evaluating,
                w1=w1,
            )
        except Exception as err:  # shown to the user; the thread must not die silently
            result = f"**Sweep failed:** {type(err).__name__}: {err}"
        with self._lock:
            self._finished = result

    def poll(self) -> None:
        """Show progress, or the result once the worker is done (session thread)."""
        with self._lock:
            finished, self._finished = self._finished, None
        if finished is None:
            if self.running and self._progress:
                self.status = self._progress
            return
        self.running = False
        if isinstance(finished, str):
            self.status = finished
            return
        if finished.stopped:
            self.status = f"stopped at step {finished.steps_done:,} of {finished.steps:,}"
            return
        self.result = finished
        self.show_result()
        t = finished.totals()
        self.status = (
            f"{t['runs']} runs × {t['steps']:,} steps in {t['seconds']:.1f} s "
            f"(compile {t['compile_seconds']:.1f} s, evaluation {t['eval_seconds']:.1f} s); "
            f"{t['model_steps_per_s']:,.0f} model steps/s; memory estimate "
            f"{t['memory_estimate_mb']:.1f} MiB"
        )

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    # ------------------------------------------------------------------ figures
    def _build_figures(self) -> None:
        self.samples_src = ColumnDataSource({"x": [], "y": []})
        self.means_src = ColumnDataSource({"x": [], "y": []})
        self.frame_src = ColumnDataSource({"x": [], "y": [], "w": [], "h": []})
        self.samples_fig = figure(
            height=520,
            width=560,
            match_aspect=True,
            toolbar_location="above",
            title="final samples: a column per value, a row per seed",
        )
        self.samples_fig.rect(
            "x", "y", "w", "h", source=self.frame_src, fill_alpha=0, line_color="#bbbbbb"
        )
        self.samples_fig.scatter(
            "x", "y", source=self.means_src, size=6, marker="x", color="#d62728"
        )
        self.samples_fig.scatter(
            "x", "y", source=self.samples_src, size=2, color="#1f77b4", alpha=0.5
        )
        self.samples_fig.axis.visible = False
        self.samples_fig.grid.visible = False

        self.heat_src = ColumnDataSource({"value": [], "seed": [], "v": [], "label": []})
        self.heat_mapper = LinearColorMapper(palette=Viridis256, low=0, high=1)
        self.heat_fig = figure(
            height=520,
            width=520,
            x_range=FactorRange(factors=[]),
            y_range=FactorRange(factors=[]),
            toolbar_location=None,
            title="final modes",
        )
        self.heat_fig.rect(
            "value",
            "seed",
            0.95,
            0.95,
            source=self.heat_src,
            fill_color={"field": "v", "transform": self.heat_mapper},
            line_color=None,
        )
        self.heat_fig.text(
            "value",
            "seed",
            text="label",
            source=self.heat_src,
            text_align="center",
            text_baseline="middle",
            text_color="white",
        )

    def show_result(self) -> None:
        """Fill the small multiples and the heat map from ``self.result``."""
        res = self.result
        if res is None:
            return
        field = next(iter(res.grid))
        values, seeds = res.grid[field], res.seeds
        n_seeds = len(seeds)
        extent = data.data_extent(res.configs[0])
        span = 2.2 * extent
        xs, ys, fx, fy, mx, my = [], [], [], [], [], []
        means = data.mode_means(res.configs[0])
        for run in range(res.runs):
            col, row = divmod(run, n_seeds)
            cx, cy = col * span, -row * span
            pts = res.samples[run, :SAMPLES_SHOWN]
            keep = np.all(np.abs(pts) < extent, axis=1)  # far outliers would hide others
            xs.append(pts[keep, 0] + cx)
            ys.append(pts[keep, 1] + cy)
            fx.append(cx)
            fy.append(cy)
            if means is not None:
                mx.append(means[:, 0] + cx)
                my.append(means[:, 1] + cy)
        self.samples_src.data = {"x": np.concatenate(xs), "y": np.concatenate(ys)}
        self.frame_src.data = {"x": fx, "y": fy, "w": [span] * len(fx), "h": [span] * len(fy)}
        self.means_src.data = (
            {"x": np.concatenate(mx), "y": np.concatenate(my)} if mx else {"x": [], "y": []}
        )
        self.samples_fig.title.text = (
            f"final samples of {res.base.loss}: columns {field} = "
            + ", ".join(f"{v:g}" for v in values)
            + f"; rows seeds {seeds[0]}..{seeds[-1]}"
        )
        self.heat_fig.x_range.factors = [f"{v:g}" for v in values]
        self.heat_fig.y_range.factors = [f"seed {s}" for s in reversed(seeds)]
        self.heat_fig.xaxis.axis_label = field
        self._fill_heat()

    @param.depends("heat_metric", watch=True)
    def _fill_heat(self) -> None:
        res = self.result
        if res is None:
            return
        name = HEAT_METRICS[self.heat_metric]
        grid = res.cell_metrics(name)  # (values, seeds)
        field = next(iter(res.grid))
        values = [f"{v:g}" for v in res.grid[field]]
        cols, rows = np.meshgrid(np.arange(len(values)), np.arange(len(res.seeds)), indexing="ij")
        flat = grid.ravel()
        fmt = "{:.0f}" if name == "modes" else "{:.1f}" if name == "hq" else "{:.3f}"
        self.heat_src.data = {
            "value": [values[c] for c in cols.ravel()],
            "seed": [f"seed {res.seeds[r]}" for r in rows.ravel()],
            "v": np.where(np.isfinite(flat), flat, np.nan),
            "label": ["-" if not np.isfinite(v) else fmt.format(v) for v in flat],
        }
        finite = flat[np.isfinite(flat)]
        if name == "modes":
            means = data.mode_means(res.configs[0])
            low, high = 0.0, float(len(means) if means is not None else 1)
        elif name == "hq":
            low, high = 0.0, 100.0
        else:
            low, high = 0.0, float(finite.max()) if finite.size else 1.0
        self.heat_mapper.update(low=low, high=high)
        kind = " (sliced)" if name == "w1" and res.w1_kind == "sliced" else ""
        self.heat_fig.title.text = f"final {self.heat_metric}{kind} per run"


def sweep_view(lab: SweepLab | None = None) -> pn.viewable.Viewable:
    """The Sweep tab: controls, run / stop, small multiples and a heat map."""
    lab = lab or SweepLab()
    run = pn.widgets.Button(label="▶ run sweep", color="primary", width=120)
    stop = pn.widgets.Button(label="■ stop", width=90)
    run.on_click(lambda _: lab.start())
    stop.on_click(lambda _: lab.stop())
    controls = pn.Param(
        lab,
        parameters=[
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
        show_name=False,
        width=260,
    )
    help_text = pn.bind(lambda f: f"*{f}: {field_doc(f)}*", lab.param.field)
    status = pn.pane.Markdown(pn.bind(lambda s: s, lab.param.status), width=900)
    if pn.state.curdoc is not None:
        pn.state.on_session_destroyed(lambda _ctx: lab.close())
    return pn.Row(
        pn.Column(pn.Row(run, stop), controls, pn.pane.Markdown(help_text, width=250)),
        pn.Column(
            status,
            pn.Row(pn.pane.Bokeh(lab.samples_fig), pn.pane.Bokeh(lab.heat_fig)),
        ),
        name="Sweep",
    )
