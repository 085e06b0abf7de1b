"""The lab's files: your own data in (drawn or uploaded), a run's files out.

**In.** Draw mode on the map (a click adds a point, a drag a stroke of points), then
"Train on these"; or open a file: points (CSV with two numeric columns, or ``.npy`` of
shape (N, 2)), a run's config (``.json``) or its weights (``.npz``), told apart by their
bytes, not their names. Uploaded bytes are parsed in memory (``gan2d.core.points``,
``gan2d.core.runfile``): never written to disk, never unpickled or executed. A bad file
gets a message that names the problem, and the run goes on as it was.

**Out.** Downloads made on the server from memory: a PNG of the current view and an
animated GIF of the kept frames (``gan2d.ui.export``), the config as JSON and the full
training state as ``.npz`` (``gan2d.core.runfile``), which ``python -m gan2d train
--config ... --init ...`` continues exactly.
"""

from __future__ import annotations

import asyncio
import functools
import html
import io
import logging
from typing import TYPE_CHECKING

import jax
import panel as pn
import param

from gan2d.core import points, runfile
from gan2d.core.runs import run_state

if TYPE_CHECKING:  # the lab imports this module
    from gan2d.ui.lab import Lab

log = logging.getLogger("gan2d.app")

UPLOAD_LIMIT = f"{points.MAX_POINTS:,} points, {points.MAX_BYTES // 2**20} MB"
DRAWN_MIN = points.MIN_POINTS
COPY_TIMEOUT_S = 20.0


class Download(pn.widgets.FileDownload):
    """A button whose file is made when clicked, in two parts: ``prepare()`` on the
    page's event loop gathers what the file needs (quickly; a ``ValueError`` says why
    there is nothing to save yet), then ``make(prepared) -> bytes`` runs on a thread,
    so a slow file (a GIF, a copy of the weights) never holds up the server's other
    pages. A failure becomes a message (``on_error``), never a traceback."""

    def __init__(self, label: str, filename: str, prepare, make, on_error, **params):
        super().__init__(
            callback=prepare,  # Panel's label logic wants one; _transfer replaces its use
            filename=filename,
            label=label,
            color="light",
            embed=False,
            sizing_mode="stretch_width",
            margin=(2, 5),
            **params,
        )
        self._prepare, self._make, self._on_error = prepare, make, on_error

    @param.depends("_clicks", watch=True)
    def _transfer(self):
        try:
            prepared = self._prepare()
        except ValueError as err:
            self._on_error(str(err))
            return
        pn.state.execute(functools.partial(self._finish, prepared))

    async def _finish(self, prepared) -> None:
        try:
            raw = await asyncio.to_thread(self._make, prepared)
        except (ValueError, TimeoutError) as err:
            self._on_error(str(err))
            return
        except Exception as err:
            log.exception("gan2d: a download failed")
            self._on_error(f"The file could not be made: {type(err).__name__}: {err}")
            return
        self._sync_data(io.BytesIO(raw))


class RunFiles(pn.viewable.Viewer):
    """Draw / upload controls and download buttons for one lab."""

    def __init__(self, lab: Lab, **params):
        super().__init__(**params)
        self.lab = lab
        plots = lab.plots
        self.draw_toggle = pn.widgets.Toggle(
            label="✎ Draw points", color="light", sizing_mode="stretch_width"
        )
        self.draw_toggle.param.watch(lambda e: plots.set_drawing(e.new), "value")
        self.use_button = pn.widgets.Button(
            label="Train on these", color="primary", sizing_mode="stretch_width"
        )
        self.use_button.on_click(lambda _e: self._guard(self.use_drawn))
        self.clear_button = pn.widgets.Button(label="Clear", width=70)
        self.clear_button.on_click(lambda _e: plots.clear_drawing())
        # No file types: browsers name them inconsistently (an empty type for .npy, a
        # spreadsheet's for .csv), and the bytes say what a file is. The box's cap is
        # the largest file it opens (weights); each kind has its own limit after that.
        self.dropper = pn.widgets.FileDropper(
            max_file_size=f"{runfile.MAX_WEIGHTS_BYTES // 2**20}MB",
            chunk_size=1_000_000,
            multiple=False,
            layout="compact",
            sizing_mode="stretch_width",
        )
        self.dropper.param.watch(self._opened, "value")
        self._seen: dict[str, bytes | str] = {}  # the file each name last brought
        self.fit = pn.widgets.Checkbox(label="fit uploaded points to the view", value=False)
        self.status = pn.widgets.StaticText(value="", sizing_mode="stretch_width")
        warn = lab.download_failed
        self.downloads = {
            name: Download(label, filename, prepare, make, warn)
            for name, label, filename, prepare, make in (
                ("png", "Picture (PNG)", "gan2d.png", self._png_inputs, _png),
                ("gif", "Animation (GIF)", "gan2d.gif", self._gif_inputs, _gif),
                ("config", "Config (JSON)", "gan2d-config.json", self._config_inputs, _text),
                ("weights", "Weights (NPZ)", "gan2d-weights.npz", self._runner, _weights),
            )
        }
        self.data_panel = pn.Column(
            pn.Row(self.draw_toggle, self.clear_button, sizing_mode="stretch_width"),
            self.use_button,
            pn.pane.HTML(
                "Open points (CSV or .npy, up to "
                f"{html.escape(UPLOAD_LIMIT)}), a config (.json) or weights (.npz):",
                margin=(6, 5, 0, 5),
                styles={"font-size": "0.9em"},
            ),
            self.dropper,
            self.fit,
            self.status,
            sizing_mode="stretch_width",
        )
        self.save_panel = pn.Column(*self.downloads.values(), sizing_mode="stretch_width")

    def __panel__(self):
        return pn.Column(self.data_panel, self.save_panel)

    def make(self, name: str) -> bytes:
        """The file of download ``name`` ("png", "gif", "config", "weights"), made at
        once on this thread (the buttons make theirs on a thread of their own)."""
        button = self.downloads[name]
        return button._make(button._prepare())

    def set_read_only(self, read_only: bool) -> None:
        """A follower cannot change the data or open files (downloads still work)."""
        for widget in (self.draw_toggle, self.use_button, self.clear_button, self.dropper):
            widget.disabled = read_only
        if read_only:
            self.draw_toggle.value = False

    # ------------------------------------------------------------------ messages
    def say(self, text: str, kind: str = "info") -> None:
        colour = {"info": "#1864ab", "ok": "#2b8a3e", "warning": "#c92a2a"}[kind]
        self.status.value = f'<span style="color:{colour}">{html.escape(text)}</span>'

    def _guard(self, action, *args) -> None:
        """Bad input becomes a message here; the run goes on as it was."""
        try:
            action(*args)
        except ValueError as err:
            self.say(str(err), "warning")
        except Exception as err:
            log.exception("gan2d: a file action failed")
            self.say(f"Something went wrong: {type(err).__name__}: {err}", "warning")

    # ------------------------------------------------------------------ data in
    def use_drawn(self) -> None:
        drawn = self.lab.plots.drawn_points()
        if len(drawn) < DRAWN_MIN:
            raise ValueError(
                f"Draw at least {DRAWN_MIN} points first (you have {len(drawn)}): turn on "
                "Draw points, then click or drag on the map."
            )
        pts = points.check_points(drawn, "the drawn points")
        self.draw_toggle.value = False
        self.lab.use_points(pts, f"{len(pts):,} drawn points")
        self.say(f"Training on your {len(pts):,} drawn points.", "ok")

    def _opened(self, event) -> None:
        """The box's files changed: open the one that is new (a file removed from the
        box, or a name uploaded again, changes them too)."""
        self._seen = {k: v for k, v in self._seen.items() if k in event.new}
        for name, raw in event.new.items():
            if self._seen.get(name) is raw:
                continue
            self._seen[name] = raw
            self.open_file(name, raw.encode("utf-8") if isinstance(raw, str) else raw)

    def open_file(self, name: str, raw: bytes) -> None:
        """Use an uploaded file (a bad one becomes a message; nothing changes)."""
        self._guard(self._open, name, raw)

    def _open(self, name: str, raw: bytes) -> None:
        """A config, weights or points, by what the file's bytes are."""
        kind = runfile.file_kind(raw)
        if kind == "config":
            config, preset = runfile.config_from_json(raw, name)
            self.lab.load_run(config, preset)
            self.say(f"Loaded the config {name}: the run restarted from its seed.", "ok")
        elif kind == "weights":
            config, preset, state = runfile.run_from_npz(raw, name)
            self.lab.load_run(config, preset, state)
            step = int(jax.device_get(state["step"]))
            self.say(f"Loaded {name}: the run goes on from step {step:,}.", "ok")
        else:
            pts = points.parse_points(raw, name)
            note = ""
            if self.fit.value or points.far_from_view(pts):
                pts = points.fit_to_view(pts)
                note = " (rescaled to fit the view)"
            self.lab.use_points(pts, f"{name}: {len(pts):,} points")
            self.say(f"Training on {name}: {len(pts):,} points{note}.", "ok")

    # ------------------------------------------------------------------ files out
    # What each file needs, gathered on the page's event loop (see ``Download``).
    def _png_inputs(self):
        frame = self.lab.shown_frame()
        if frame is None:
            raise ValueError("No picture yet: press Play or Step first.")
        return frame, self.lab.curve_history(), f"gan2d — {self.lab.settings.preset}"

    def _gif_inputs(self):
        frames = list(self.lab.history.frames)
        if len(frames) < 2:
            raise ValueError("Nothing to animate yet: let the run play for a few seconds.")
        return frames

    def _config_inputs(self):
        self.lab.hold_points()
        return runfile.config_json(self.lab.config, self.lab.settings.preset)

    def _runner(self):
        if self.lab.runner is None:
            raise ValueError("This lab has no run of its own: press Make it mine first.")
        self.lab.hold_points()
        return self.lab.runner, self.lab.settings.preset


# The files themselves, made on a thread from what was gathered.
def _png(inputs) -> bytes:
    from gan2d.ui import export

    frame, curves, title = inputs
    return export.render_png(frame, curves, title=title)


def _gif(frames) -> bytes:
    from gan2d.ui import export

    return export.render_gif(frames)


def _text(text: str) -> bytes:
    return text.encode("utf-8")


def _weights(inputs) -> bytes:
    runner, preset = inputs
    config, _runs, state = runner.copy_state(COPY_TIMEOUT_S)
    return runfile.weights_npz(config, jax.device_get(run_state(state, 0)), preset)
