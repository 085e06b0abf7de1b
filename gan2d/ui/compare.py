"""The "Compare" tab: two to four GANs trained side by side, in lockstep, from one seed.

Each run gets its fakes and reals over its critic's map (the lab's palette and colour
bar); one chart follows a metric of every run over steps. Runs whose configs share
shapes and code train as one batch (``gan2d.core.runs.group``); the others get their
own program and are stepped together.

The training is a scheduler job (``CompareRuns``): the page's controls only ask, and
a worker of the shared pool trains, so nothing trains on the event loop and two pieces
of work never touch the runs at once. A periodic callback in the session copies the
latest frame into the figures (built once; only their data changes).
"""

from __future__ import annotations

import html
import time

import jax
import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource

from gan2d.core import data, snapshot
from gan2d.core.config import LOSSES, Config
from gan2d.core.runs import group
from gan2d.presets import PRESETS, get_preset, live_config
from gan2d.ui.plots import CriticMap, fit_ranges, hold_ranges, line_figure, static_legend
from gan2d.ui.scheduler import PageJob, Scheduler
from gan2d.ui.style import CSS, RUN_COLOURS, SIDEBAR_WIDTH, style_figure
from gan2d.ui.trainer import warm
from gan2d.ui.widgets import Notice, Transport, in_session, param_controls, status_line

NONE = "(none)"
MAX_RUNS = 4
RESOLUTION = snapshot.Resolution(samples=384, grid=48, arrows=8, manifold=8)
METRICS = {"modes": "live_modes", "HQ %": "live_hq", "sliced W1": "sliced_w1"}
SHOW_EVERY_MS = 60


def run_choices() -> list[str]:
    """Presets, and ns-gan with each other loss (same settings, one change)."""
    variants = [f"ns-gan + loss={loss}" for loss in LOSSES if loss != "ns"]
    return list(PRESETS) + variants


def config_for(choice: str, seed: int) -> Config:
    """The config of a menu choice at the size the app trains live."""
    name, _, loss = choice.partition(" + loss=")
    config = get_preset(name).config
    if loss:
        config = config.with_changes(loss=loss)
    return live_config(config).with_changes(seed=seed)


def warm_default() -> None:
    """Compile the programs of the tab's default runs (blocking): the server does it
    once at start, so the first Play does not wait."""
    lab = CompareLab.param
    choices = [lab.run_1.default, lab.run_2.default, lab.run_3.default, lab.run_4.default]
    configs = [config_for(c, lab.seed.default) for c in choices if c != NONE]
    for _, runs in group(configs):
        warm(runs, (lab.steps_per_frame.default,), RESOLUTION)


class CompareRuns(PageJob):
    """The runs of the Compare tab, trained by the scheduler a frame at a time."""

    name = "compare"

    def __init__(self, pool: Scheduler | None = None):
        super().__init__(pool)
        self._pending: list[Config] | None = None
        self._steps = 20
        self._queued = 0
        self._latest: dict | None = None
        self.error: str | None = None
        self.generation = 0  # counts restarts: a frame's colours are set per generation
        self.groups: list = []  # (indices, Runs): the worker's own
        self.states: list = []  # packed (``Runs.pack``)
        self.trained = 0  # steps, the same in every run
        self.configs: list[Config] = []
        self._join()

    # ------------------------------------------------------------------ requests
    def restart(self, configs: list[Config]) -> None:
        """New runs from their seeds (applied by the next piece of work)."""
        with self._lock:
            self._pending = list(configs)
            self._latest = None
            self.error = None
        self._changed()

    def play(self, steps: int) -> None:
        with self._lock:
            self._playing, self._steps = True, steps
        self._changed()

    def pause(self) -> None:
        with self._lock:
            self._playing = False

    def step(self, steps: int) -> None:
        """One frame's worth of steps, then pause."""
        with self._lock:
            self._playing, self._steps = False, steps
            self._queued += 1
        self._changed()

    def take(self) -> dict | None:
        """The latest frame, if there is a new one (the next is made after this)."""
        with self._lock:
            frame, self._latest = self._latest, None
        if frame is not None:
            self._changed()
        return frame

    # ------------------------------------------------------------------ the job
    def due(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            wanted = self._playing or self._queued > 0
            if self._pending is not None:
                return wanted  # a tab nobody plays costs nothing, not even an init
            if self.error or self._latest is not None:
                return False
            return wanted

    def work(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
            steps = self._steps
            if pending is None and not self._playing:
                if not self._queued:
                    return
                self._queued -= 1
        if pending is not None:
            self.configs = pending
            self.groups = group(pending)
            self.states = [runs.pack(runs.init()) for _, runs in self.groups]
            self.trained = 0
            self.generation += 1
            return
        frame = self._advance(steps)
        with self._lock:
            if self._pending is None:  # not made stale by a restart meanwhile
                self._latest = frame

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.error = f"training stopped: {type(error).__name__}: {error}"
            self._playing = False
            self._queued = 0

    def _advance(self, n: int) -> dict:
        """Train every run ``n`` steps and take one snapshot of each."""
        t0 = time.perf_counter()
        per_run: list[dict | None] = [None] * len(self.configs)
        extent = max(data.data_extent(c) for c in self.configs)
        for gi, (_, runs) in enumerate(self.groups):
            self.states[gi], _ = runs.packed_chunk(self.states[gi], n)
        self.trained = step = self.trained + n
        key = jax.random.PRNGKey(step)
        for gi, (indices, runs) in enumerate(self.groups):
            snaps = snapshot.take(runs, self.states[gi], key, extent, RESOLUTION)
            for j, run in enumerate(indices):
                per_run[run] = snaps[j]
        seconds = time.perf_counter() - t0
        return {
            "step": step,
            "steps_per_s": n / max(seconds, 1e-9),
            "runs": per_run,
            "configs": self.configs,
            "generation": self.generation,
            "programs": len(self.groups),
        }


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

    RUN_FIELDS = ("run_1", "run_2", "run_3", "run_4", "seed")

    def __init__(self, pool: Scheduler | None = None, **params):
        super().__init__(**params)
        self.notice = Notice()
        self.job = CompareRuns(pool)
        self._history: list[list[tuple]] = [[] for _ in range(MAX_RUNS)]
        self._callback = None
        self._build_figures()
        self.configs: list[Config] = []
        self.extent = 3.0
        self._apply_runs()
        self.param.watch(self.notice.guard(self._on_runs), list(self.RUN_FIELDS))
        self.param.watch(self._on_speed, ["steps_per_frame"])
        self.param.watch(self._redraw_metric, ["metric"])

    # ------------------------------------------------------------------ runs
    def choices(self) -> list[str]:
        picked = [self.run_1, self.run_2, self.run_3, self.run_4]
        return [c for c in picked if c != NONE]

    def _on_runs(self, *events) -> None:
        try:
            self._apply_runs()
        except ValueError:
            self.param.update({e.name: e.old for e in events})  # back to what is running
            raise

    def _apply_runs(self) -> None:
        """New runs from the seed; figures keep their models, only data changes."""
        configs = [config_for(c, self.seed) for c in self.choices()]  # may raise
        self.configs = configs
        self.extent = max(data.data_extent(c) for c in configs)
        self._history = [[] for _ in range(MAX_RUNS)]
        self.job.restart(configs)
        self._restyle()
        n_prog = len(group(configs))
        self.status = (
            f"{len(configs)} runs in {n_prog} program{'s' * (n_prog > 1)} "
            "(batched where shapes match). Press Play."
        )
        self.notice.show(None)

    def _on_speed(self, event) -> None:
        if self.job.playing:
            self.job.play(event.new)

    def play(self) -> None:
        self.job.play(self.steps_per_frame)
        self.playing = True
        if not any(
            runs.is_compiled(self.steps_per_frame, packed=True) for _, runs in group(self.configs)
        ):
            self.status = (
                f"compiling the programs for {len(self.configs)} runs: the first frame "
                "takes a few seconds on a CPU (once per server)..."
            )
        self._start_polling()

    def pause(self) -> None:
        self.job.pause()
        self.playing = False

    def step(self) -> None:
        self.job.step(self.steps_per_frame)
        self.playing = False
        self._start_polling()

    def reset(self) -> None:
        self._apply_runs()

    def _start_polling(self) -> None:
        if in_session() and self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.show_latest, SHOW_EVERY_MS)

    def close(self) -> None:
        """Stop the runs and the periodic callback (session closed)."""
        self.job.close()
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    # ------------------------------------------------------------------ figures
    def _build_figures(self) -> None:
        self.maps = [
            CriticMap(3.0, f"run {i + 1}", size=330, arrows=False) for i in range(MAX_RUNS)
        ]
        self.map_panes = [pn.pane.Bokeh(m.view, sizing_mode="fixed") for m in self.maps]
        self.run_figs = [m.figure for m in self.maps]
        self.fake_srcs = [m.fake_src for m in self.maps]
        self.img_srcs = [m.critic_src for m in self.maps]
        fig = line_figure(
            height=260,
            sizing_mode="stretch_width",
            tools="",
            x_axis_label="step",
            min_border_left=72,
        )
        self.line_srcs = []
        for i in range(MAX_RUNS):
            src = ColumnDataSource({"step": [], "value": []})
            fig.line("step", "value", source=src, color=RUN_COLOURS[i], line_width=2)
            self.line_srcs.append(src)
        self.legend = static_legend(
            fig, [(f"run {i + 1}", {"color": RUN_COLOURS[i], "width": 2}) for i in range(MAX_RUNS)]
        )
        self.metric_fig = style_figure(fig)

    def _restyle(self) -> None:
        """Per-run titles, ranges and colour ranges: set once per run, not per frame."""
        choices = self.choices()
        for i, critic_map in enumerate(self.maps):
            self.map_panes[i].visible = i < len(choices)
            critic_map.set_extent(self.extent)
            critic_map.clear()
            self.line_srcs[i].data = {"step": [], "value": []}
            if i < len(choices):
                critic_map.figure.title.text = f"{i + 1}: {choices[i]}"
                critic_map.figure.title.text_color = RUN_COLOURS[i]
        for i, item in enumerate(self.legend.items):
            item.visible = i < len(choices)
            if i < len(choices):
                item.label = {"value": f"{i + 1}: {choices[i]}"}
        self.metric_fig.yaxis.axis_label = self.metric
        hold_ranges(self.metric_fig)

    def show_latest(self) -> bool:
        """Copy the latest frame into the figures (on the session's thread).
        Returns whether there was a new frame."""
        if self.job.error:
            self.notice.show("danger", self.job.error)
            self.playing = False
        frame = self.job.take()
        if frame is None:
            return False
        for i, run in enumerate(frame["runs"]):
            loss = frame["configs"][i].loss
            self.maps[i].show(run, loss, frame["generation"], self.extent)
            point = (
                frame["step"],
                float(run.get("live_modes", np.nan)),
                float(run.get("live_hq", np.nan)),
                float(run["sliced_w1"]),
            )
            self._history[i].append(point)
            value = point[1 + list(METRICS).index(self.metric)]
            self.line_srcs[i].stream({"step": [point[0]], "value": [value]}, rollover=2000)
        self._fit_metric()
        self.status = (
            f"step {frame['step']:,} · {len(frame['runs'])} runs in {frame['programs']} "
            f"program(s) · {frame['steps_per_s']:.0f} steps/s per run"
        )
        return True

    def _redraw_metric(self, event=None) -> None:
        col = 1 + list(METRICS).index(self.metric)
        self.metric_fig.yaxis.axis_label = self.metric
        for i, src in enumerate(self.line_srcs):
            hist = self._history[i]
            src.data = {"step": [h[0] for h in hist], "value": [h[col] for h in hist]}
        self._fit_metric()

    def _fit_metric(self) -> None:
        sources = self.line_srcs
        fit_ranges(self.metric_fig, [s.data["step"] for s in sources],
                   [s.data["value"] for s in sources])  # fmt: skip


def compare_view(lab: CompareLab | None = None) -> pn.viewable.Viewable:
    """The Compare tab: controls, one map per run, a shared metric chart."""
    lab = lab or CompareLab()
    transport = Transport(
        on_play=lab.play, on_pause=lab.pause, on_step=lab.step, on_reset=lab.reset
    )
    lab.param.watch(lambda e: setattr(transport, "playing", e.new), "playing")
    if in_session():
        pn.state.on_session_destroyed(lambda _ctx: lab.close())
    controls = param_controls(
        lab, ["run_1", "run_2", "run_3", "run_4", "seed", "steps_per_frame", "metric"]
    )
    status = status_line(lab.status, css_classes=["gan2d-status"], width=900)
    lab.param.watch(lambda e: setattr(status, "value", html.escape(e.new)), "status")
    runs = pn.Row(*lab.map_panes)
    return pn.Row(
        pn.Column(transport, controls, width=SIDEBAR_WIDTH + 20),
        pn.Column(
            status,
            lab.notice.pane,
            runs,
            pn.pane.Bokeh(lab.metric_fig, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        ),
        sizing_mode="stretch_width",
        stylesheets=[CSS],
        name="Compare",
    )
