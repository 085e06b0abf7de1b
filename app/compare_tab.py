"""The "Compare" tab: two to four GANs trained side by side, in lockstep, from one seed.

Each run gets its fakes and reals over its critic's map; one chart follows a metric of
every run over steps. Runs whose configs share shapes and code train as one vmapped
program; the others get their own program and are stepped together
(``gan2d.sweep.Lockstep``).

Training runs in a worker thread that keeps only the latest frame; a periodic callback
in the session copies it into the figures' ``ColumnDataSource.data`` (figures are built
once). In tests, ``advance`` and ``show_latest`` drive the same path without a server.
"""

from __future__ import annotations

import threading
import time

import jax
import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, LinearColorMapper, Range1d
from bokeh.palettes import Category10_10, RdBu11
from bokeh.plotting import figure

from gan2d import data, fields
from gan2d.config import LOSSES, PRESETS, Config, get_preset
from gan2d.sweep import Lockstep, vmapped_snapshot

NONE = "(none)"
MAX_RUNS = 4
COLORS = Category10_10[:MAX_RUNS]
RESOLUTION = fields.Resolution(samples=384, grid=48, arrows=8, manifold=8)
METRICS = {"modes": "live_modes", "HQ %": "live_hq", "sliced W1": "sliced_w1"}
LOG_LOSSES = ("minimax", "ns")  # critic shown as D(x) in [0, 1]


def run_choices() -> list[str]:
    """Presets, and ns-gan with each other loss (same settings, one change)."""
    variants = [f"ns-gan + loss={loss}" for loss in LOSSES if loss != "ns"]
    return list(PRESETS) + variants


def cpu_sizes(config: Config) -> Config:
    """On a CPU the presets' 128 x batch 256 nets are shrunk to 64 x batch 128, as in
    the lab, so four runs still move at several frames per second."""
    if jax.default_backend() == "cpu":
        return config.with_changes(width=min(config.width, 64), batch_size=128)
    return config


def config_for(choice: str, seed: int) -> Config:
    name, _, loss = choice.partition(" + loss=")
    config = get_preset(name).config
    if loss:
        config = config.with_changes(loss=loss)
    return cpu_sizes(config).with_changes(seed=seed)


class CompareLab(param.Parameterized):
    """State of the Compare tab; one parameter per control."""

    run_1 = param.Selector(default="ns-gan", objects=run_choices())
    run_2 = param.Selector(default="wgan-gp", objects=run_choices())
    run_3 = param.Selector(default="unrolled", objects=[NONE, *run_choices()])
    run_4 = param.Selector(default=NONE, objects=[NONE, *run_choices()])
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="one seed for every run")
    steps_per_frame = param.Integer(default=20, bounds=(1, 500))
    metric = param.Selector(default="modes", objects=list(METRICS))
    playing = param.Boolean(default=False, precedence=-1)
    status = param.String(default="", precedence=-1)

    def __init__(self, **params):
        super().__init__(**params)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: dict | None = None
        self._history: list[list[tuple]] = [[] for _ in range(MAX_RUNS)]
        self._callback = None
        self._build_figures()
        self.reset()

    # ------------------------------------------------------------------ runs
    def choices(self) -> list[str]:
        picked = [self.run_1, self.run_2, self.run_3, self.run_4]
        return [c for c in picked if c != NONE]

    def configs(self) -> list[Config]:
        return [config_for(c, self.seed) for c in self.choices()]

    @param.depends("run_1", "run_2", "run_3", "run_4", "seed", watch=True)
    def reset(self) -> None:
        """New runs from the seed; figures keep their models, only data changes."""
        was_playing = self.playing
        self.pause()
        configs = self.configs()
        self.lockstep = Lockstep(configs)
        self.extent = max(data.data_extent(c) for c in configs)
        self._snapshot_fns = [
            vmapped_snapshot(fields.make_snapshot(g.static, RESOLUTION))
            for g in self.lockstep.groups
        ]
        self._compiled = False
        self._history = [[] for _ in range(MAX_RUNS)]
        with self._lock:
            self._latest = None
        self._restyle(configs)
        n_prog = self.lockstep.programs
        self.status = (
            f"{len(configs)} runs in {n_prog} program{'s' * (n_prog > 1)} "
            "(vmapped where shapes match). Press play."
        )
        if was_playing:
            self.play()

    def advance(self, n: int | None = None) -> dict:
        """Train every run ``n`` steps (default: steps per frame) and take a frame."""
        n = n or self.steps_per_frame
        t0 = time.perf_counter()
        diags = self.lockstep.chunk(n)
        key = jax.random.PRNGKey(self.lockstep.step_count())
        snaps = self.lockstep.snapshots(self._snapshot_fns, key, self.extent)
        seconds = time.perf_counter() - t0
        self._compiled = True
        frame = {
            "step": self.lockstep.step_count(),
            "steps_per_s": n / max(seconds, 1e-9),
            "runs": [
                {**snap, "d_loss": float(diag["d_loss"][-1])}
                for snap, diag in zip(snaps, diags, strict=True)
            ],
        }
        with self._lock:
            self._latest = frame
        return frame

    # ------------------------------------------------------------------ worker
    def play(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        if not self._compiled:
            self.status = (
                f"compiling {self.lockstep.programs} program(s) for {len(self.choices())} "
                "runs: the first frame takes a few seconds on a CPU..."
            )
        self._stop.clear()
        self.playing = True
        self._thread = threading.Thread(target=self._work, daemon=True, name="compare")
        self._thread.start()
        if pn.state.curdoc is not None and self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.show_latest, period=60)

    def pause(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._thread = None
        self.playing = False

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                self.advance()
        except Exception as err:  # shown to the user; the thread must not die silently
            self._error = f"training stopped: {type(err).__name__}: {err}"
            self._stop.set()

    def close(self) -> None:
        """Stop the worker and the periodic callback (session closed)."""
        self.pause()
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    # ------------------------------------------------------------------ figures
    def _build_figures(self) -> None:
        self.run_figs, self.fake_srcs, self.real_srcs, self.img_srcs = [], [], [], []
        self.mappers, self.line_srcs = [], []
        for i in range(MAX_RUNS):
            fig = figure(
                width=330,
                height=330,
                x_range=Range1d(-3, 3),
                y_range=Range1d(-3, 3),
                match_aspect=True,
                toolbar_location=None,
                title=f"run {i + 1}",
            )
            mapper = LinearColorMapper(palette=RdBu11, low=0.0, high=1.0)
            img = ColumnDataSource({"image": [np.zeros((2, 2))], "x": [-3], "y": [-3], "d": [6]})
            fig.image(image="image", x="x", y="y", dw="d", dh="d", color_mapper=mapper, source=img)
            real = ColumnDataSource({"x": [], "y": []})
            fake = ColumnDataSource({"x": [], "y": []})
            fig.scatter("x", "y", source=real, size=3, color="#222222", alpha=0.5)
            fig.scatter("x", "y", source=fake, size=3, color=COLORS[i], alpha=0.8)
            self.run_figs.append(fig)
            self.fake_srcs.append(fake)
            self.real_srcs.append(real)
            self.img_srcs.append(img)
            self.mappers.append(mapper)
        self.metric_fig = figure(
            height=260, sizing_mode="stretch_width", toolbar_location=None, x_axis_label="step"
        )
        for i in range(MAX_RUNS):
            src = ColumnDataSource({"step": [], "value": []})
            self.metric_fig.line(
                "step", "value", source=src, color=COLORS[i], line_width=2,
                legend_label=f"run {i + 1}",
            )  # fmt: skip
            self.line_srcs.append(src)
        self.metric_fig.legend.location = "top_left"

    def _restyle(self, configs: list[Config]) -> None:
        """Per-run titles, ranges and colour ranges: set once per run, not per frame."""
        e = self.extent
        for i, fig in enumerate(self.run_figs):
            fig.visible = i < len(configs)
            fig.x_range.start, fig.x_range.end = -e, e
            fig.y_range.start, fig.y_range.end = -e, e
            self.fake_srcs[i].data = {"x": [], "y": []}
            self.real_srcs[i].data = {"x": [], "y": []}
            self.line_srcs[i].data = {"step": [], "value": []}
            if i < len(configs):
                fig.title.text = f"{i + 1}: {self.choices()[i]}"
                if configs[i].loss in LOG_LOSSES:
                    self.mappers[i].update(low=0.0, high=1.0)
                else:  # unbounded critic: range fixed from the first frame
                    self.mappers[i].update(low=None, high=None)
        for i, item in enumerate(self.metric_fig.legend[0].items):
            item.visible = i < len(configs)
            if i < len(configs):
                item.label = {"value": f"{i + 1}: {self.choices()[i]}"}
        self.metric_fig.yaxis.axis_label = self.metric

    def show_latest(self) -> bool:
        """Copy the latest frame into the figures (on the session's thread).
        Returns whether there was a new frame."""
        error = getattr(self, "_error", None)
        if error:
            self.status, self._error = error, None
            self.playing = False
        with self._lock:
            frame, self._latest = self._latest, None
        if frame is None:
            return False
        e = self.extent
        for i, run in enumerate(frame["runs"]):
            self.fake_srcs[i].data = {"x": run["fake"][:, 0], "y": run["fake"][:, 1]}
            self.real_srcs[i].data = {"x": run["real"][:, 0], "y": run["real"][:, 1]}
            critic = run["critic"]
            mapper = self.mappers[i]
            if mapper.low is None:
                span = float(np.nanmax(np.abs(critic))) or 1.0
                mapper.update(low=-span, high=span)
            self.img_srcs[i].data = {"image": [critic], "x": [-e], "y": [-e], "d": [2 * e]}
            point = (
                frame["step"],
                float(run.get("live_modes", np.nan)),
                float(run.get("live_hq", np.nan)),
                float(run["sliced_w1"]),
            )
            self._history[i].append(point)
            value = point[1 + list(METRICS).index(self.metric)]
            self.line_srcs[i].stream({"step": [point[0]], "value": [value]}, rollover=2000)
        n = len(frame["runs"])
        self.status = (
            f"step {frame['step']:,} · {n} runs in {self.lockstep.programs} program(s) · "
            f"{frame['steps_per_s']:.0f} steps/s per run"
        )
        return True

    @param.depends("metric", watch=True)
    def _redraw_metric(self) -> None:
        col = 1 + list(METRICS).index(self.metric)
        self.metric_fig.yaxis.axis_label = self.metric
        for i, src in enumerate(self.line_srcs):
            hist = self._history[i]
            src.data = {"step": [h[0] for h in hist], "value": [h[col] for h in hist]}


def compare_view(lab: CompareLab | None = None) -> pn.viewable.Viewable:
    """The Compare tab: controls, one figure per run, a shared metric chart."""
    lab = lab or CompareLab()
    play = pn.widgets.Button(label="▶ play", color="primary", width=90)
    pause = pn.widgets.Button(label="⏸ pause", width=90)
    reset = pn.widgets.Button(label="↺ reset", width=90)
    step = pn.widgets.Button(label="step", width=90)
    play.on_click(lambda _: lab.play())
    pause.on_click(lambda _: lab.pause())
    reset.on_click(lambda _: lab.reset())

    def one_frame(_):
        lab.advance()
        lab.show_latest()

    step.on_click(one_frame)
    controls = pn.Param(
        lab,
        parameters=["run_1", "run_2", "run_3", "run_4", "seed", "steps_per_frame", "metric"],
        show_name=False,
        width=260,
    )
    status = pn.pane.Markdown(pn.bind(lambda s: f"*{s}*", lab.param.status), width=900)
    if pn.state.curdoc is not None:
        pn.state.on_session_destroyed(lambda _ctx: lab.close())
    runs = pn.Row(*[pn.pane.Bokeh(f) for f in lab.run_figs])
    return pn.Row(
        pn.Column(pn.Row(play, pause), pn.Row(step, reset), controls),
        pn.Column(status, runs, pn.pane.Bokeh(lab.metric_fig, sizing_mode="stretch_width")),
        sizing_mode="stretch_width",
        name="Compare",
    )
