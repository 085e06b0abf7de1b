"""The lab page: controls generated from ``LabSettings``, the figures, the frame clock,
and the glue between the page, the URL and the session's trainer."""

from __future__ import annotations

import contextlib
import dataclasses
import html
import importlib
import logging
import time
from urllib.parse import urlencode

import lab_state as ls
import panel as pn
import param
from lab_plots import LabPlots
from lab_runner import Runner, ServerFull, warm_in_background
from panel.custom import JSComponent
from panel.io.state import set_curdoc

from gan2d.config import DATASET_DEFAULT_STD, PRESETS, Config

log = logging.getLogger("gan2d.app")

TICK_MS = 100  # housekeeping; frames are pushed when ready or acknowledged
URL_SETTLE_S = 0.3
ACK_TIMEOUT_S = 3.0
GONE_S = 2.0  # a tab without a connection this long is closed: stop its trainer

CSS = """
.gan2d-readout { font-size: 1.3em; font-variant-numeric: tabular-nums; color: #212529;
                 white-space: nowrap; }
.gan2d-readout b { font-size: 1.25em; }
.gan2d-readout .sep { color: #adb5bd; padding: 0 0.45em; }
"""
HEADER_STYLE = {
    "background": "#f1f3f5",
    "border-bottom": "3px solid #e8590c",
    "border-radius": "6px",
    "padding": "2px 12px",
}


class FrameClock(JSComponent):
    """The readout line (step, speed, modes...) and the frame acknowledgement.

    The server sets ``frame`` (with the ``step``, settings ``version`` and ``readout``
    it shows) after the frame's data; the page waits for the next paint, then sends the
    frame number back as a message (see ``on_msg``): a message skips the parameter
    machinery (and Panel's 50 ms batching delay) that a property change goes through.
    ``window.gan2d`` keeps paint times for tests and the frame-rate benchmark."""

    frame = param.Integer(default=0)
    step = param.Integer(default=0)
    version = param.Integer(default=0)
    readout = param.String(default="")

    _esm = """
    // Bokeh (3.x) rewrites the position stylesheet of every renderer on every paint.
    // Each rewrite dirties the page's style, and the next colour lookup (each plot
    // title reads its colour through getComputedStyle) recomputes it. Two kinds are
    // skipped: a rewrite with identical text, and moving a glyph renderer's element
    // once it is placed. That element is an empty box (it holds only stylesheets)
    // that Bokeh moves to the glyph's bounds, which change with every frame's data.
    // In our traces the first skip cut the style work per frame from 16 to 7 ms.
    // Without the hook (another Bokeh) the page is only slower.
    try {
      const proto = window.Bokeh.require("core/dom").InlineStyleSheet.prototype;
      if (!proto.gan2dSkipsSameText) {
        const update = proto._update;
        const emptyGlyphBox = (sheet) => {
          const host = sheet.el.getRootNode().host;
          return host != null && host.classList.contains("bk-GlyphRenderer") &&
            [...host.shadowRoot.children].every((el) => el.nodeName === "STYLE");
        };
        proto._update = function (css) {
          const old = this.el.textContent;
          if (old === css) return;
          if (old.includes("position:") && css.includes("position:") && emptyGlyphBox(this)) return;
          update.call(this, css);
        };
        proto.gan2dSkipsSameText = true;
      }
    } catch (err) { /* another Bokeh: nothing to skip */ }

    export function render({ model }) {
      const g = (window.gan2d = window.gan2d || {
        frames: 0, step: 0, version: 0, paints: [], versionPaint: {},
      });
      const el = document.createElement("div");
      el.className = "gan2d-readout";
      el.innerHTML = model.readout;
      const onFrame = () => {
        // Bokeh redraws its canvases in an animation-frame callback it queued when the
        // frame's data arrived; this one is queued after it, so it runs once they are
        // drawn, in the same frame: the readout changes with them, and the server may
        // send the next frame while the browser composites this one. Values are read
        // here: a frame's properties arrive as separate changes.
        requestAnimationFrame(() => {
          const f = model.frame, s = model.step, v = model.version;
          if (el.innerHTML !== model.readout) el.innerHTML = model.readout;
          const t = performance.now();
          g.frames += 1; g.step = s; g.version = v;
          g.paints.push(t);
          if (g.paints.length > 20000) g.paints.splice(0, 10000);
          if (!(v in g.versionPaint)) g.versionPaint[v] = t;
          model.send_msg(f);
        });
      };
      model.on("frame", onFrame);
      // the module loads asynchronously: a frame may have arrived before this render
      if (model.frame > 0) onFrame();
      return el;
    }
    """


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _ladder_options(name: str, value) -> dict:
    values = sorted(set(ls.LADDERS[name]) | {value})
    return {_fmt(v): v for v in values}


def _prompt(widget):
    """Let a control's changes in the browser reach the server at once. Panel holds each
    one back 50 ms to batch it with others; a lab control sends one change, and the run
    should answer it within a frame."""
    if isinstance(widget, pn.widgets.DiscreteSlider):

        def mark(*_):  # the inner slider is rebuilt whenever the options change
            widget._slider._priority_changes = ["value", "value_throttled"]

        mark()
        widget.param.watch(mark, ["options"])
    else:
        widget._priority_changes = ["value"]
    return widget


def optional_tabs() -> list[tuple[str, object]]:
    """Tabs other modules add when they exist and import cleanly."""
    tabs = []
    for module, function, title in (
        ("theory_tab", "theory_view", "Theory"),
        ("compare_tab", "compare_view", "Compare"),
        ("sweep_tab", "sweep_view", "Sweep"),
    ):
        try:
            view = getattr(importlib.import_module(module), function)()
        except ModuleNotFoundError as err:
            if err.name != module:
                log.warning("gan2d: %s tab left out: %s", title, err)
            continue
        except Exception as err:
            log.warning("gan2d: %s tab left out: %s: %s", title, type(err).__name__, err)
            continue
        tabs.append((title, view))
    return tabs


class Lab(pn.viewable.Viewer):
    """One session's lab: settings, controls, plots and the trainer behind them."""

    def __init__(self, query: dict[str, str] | None = None, **params):
        super().__init__(**params)
        parsed = ls.parse_query(query or {})
        self.settings = ls.LabSettings(
            preset=parsed.preset,
            speed=parsed.speed,
            hide=parsed.hide,
            **ls.config_values(parsed.config),
        )
        self.base = parsed.config  # carries fields without a control (ema, lr decay, ...)
        self.config = parsed.config
        self._applying = False
        self._url_dirty_at = time.perf_counter() if parsed.warnings or query else None
        self._frame_no = 0
        self._sent_at = 0.0
        self._awaiting_ack = False
        self._shown_messages = None
        self._callback = None
        self._doc = None
        self._gone_since = None

        self.plots = LabPlots(extent=_extent(self.config))
        self._build_widgets()
        self._build_layout()
        if parsed.warnings:
            self.url_alert.object = "**Some link settings were ignored:**\n\n" + "\n".join(
                f"- {html.escape(w)}" for w in parsed.warnings
            )
            self.url_alert.visible = True

        self.runner: Runner | None = None  # created when the page connects

        self.settings.param.watch(self._on_settings, list(ls.CONTROL_FIELDS))
        self.settings.param.watch(self._on_preset, ["preset"])
        self.settings.param.watch(self._on_speed, ["speed"])
        self.settings.param.watch(self._on_hide, ["hide"])
        self.clock.on_msg(self._on_ack)
        self._apply_hide()

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self):
        s = self.settings
        self.widgets: dict[str, pn.widgets.Widget] = {}
        for name in ls.CONTROL_FIELDS:
            p = s.param[name]
            label = name.replace("_", " ")
            if isinstance(p, param.Selector):
                w = pn.widgets.Select(label=label, options=list(p.objects), value=getattr(s, name))
            elif name in ls.LADDERS:
                w = pn.widgets.DiscreteSlider(
                    label=label,
                    options=_ladder_options(name, getattr(s, name)),
                    value=getattr(s, name),
                )
            else:
                w = pn.widgets.IntInput(label=label, value=getattr(s, name), start=0)
            w.description = p.doc
            w.sizing_mode = "stretch_width"
            w.param.watch(self._widget_changed(name), "value")
            self.widgets[name] = _prompt(w)

        self.preset_select = pn.widgets.Select(
            label="Preset", options=list(PRESETS), value=s.preset, width=220
        )
        self.preset_select.param.watch(lambda e: setattr(s, "preset", e.new), "value")
        self.speed_slider = pn.widgets.DiscreteSlider(
            label="steps per frame",
            options={str(v): v for v in ls.SPEEDS},
            value=s.speed,
            width=220,
        )
        self.speed_slider.param.watch(lambda e: setattr(s, "speed", e.new), "value")
        _prompt(self.speed_slider)
        self.plot_toggles = pn.widgets.CheckButtonGroup(
            label="Plots",
            options={label: key for key, label in ls.PLOTS.items()},
            value=[k for k in ls.PLOTS if k not in s.hide],
            color="light",
            sizing_mode="stretch_width",
            orientation="vertical",
        )
        self.plot_toggles.param.watch(self._on_plot_toggles, "value")

        self.play_button = pn.widgets.Button(label="Play", color="success", width=110)
        self.step_button = pn.widgets.Button(label="Step", width=70)
        self.step_d_button = pn.widgets.Button(label="Step D", width=80)
        self.step_g_button = pn.widgets.Button(label="Step G", width=80)
        self.reset_button = pn.widgets.Button(label="↺ Reset", color="warning", width=90)
        self.play_button.on_click(self._toggle_play)
        self.step_button.on_click(lambda e: self._step("both"))
        self.step_d_button.on_click(lambda e: self._step("d"))
        self.step_g_button.on_click(lambda e: self._step("g"))
        self.reset_button.on_click(lambda e: self._reset())
        self.buttons = [
            self.play_button,
            self.step_button,
            self.step_d_button,
            self.step_g_button,
            self.reset_button,
        ]
        self.clock = FrameClock(readout=self._readout_html(None), stylesheets=[CSS])

    def _widget_changed(self, name):
        def changed(event):
            if getattr(self.settings, name) != event.new:
                setattr(self.settings, name, event.new)

        return changed

    def _build_layout(self):
        self.explain = pn.pane.Markdown(
            self._explain_text(), styles={"font-size": "1.05em"}, sizing_mode="stretch_width"
        )
        self.url_alert = pn.pane.Alert("", alert_type="warning", visible=False)
        self.status_alert = pn.pane.Alert("", alert_type="info", visible=False)
        self.diverged_alert = pn.pane.Alert("", alert_type="danger", margin=(0, 0, 0, 0))
        self.diverged_reset = pn.widgets.Button(label="↺ Reset the run", color="danger")
        self.diverged_reset.on_click(lambda e: self._reset())
        self.diverged_box = pn.Row(self.diverged_alert, self.diverged_reset, visible=False)

        groups = []
        for group, names in ls.CONTROL_GROUPS.items():
            groups.append(pn.pane.Markdown(f"**{group}**", margin=(8, 5, 0, 5)))
            groups.extend(self.widgets[n] for n in names)
        groups.append(pn.pane.Markdown("**Plots shown**", margin=(8, 5, 0, 5)))
        groups.append(self.plot_toggles)
        self.sidebar = pn.Column(
            *groups, width=300, scroll=True, styles={"max-height": "calc(100vh - 170px)"}
        )

        self.plot_panes = {
            key: pn.pane.Bokeh(
                fig, sizing_mode="stretch_width" if key not in ("field", "manifold") else "fixed"
            )
            for key, fig in self.plots.figures().items()
        }
        p = self.plot_panes
        curves = pn.FlexBox(
            *(
                pn.Column(p[k], min_width=340, styles={"flex": "1 1 380px"})
                for k in ("losses", "grads", "modes", "w1", "hist")
            ),
            sizing_mode="stretch_width",
        )
        self.plots_area = pn.Column(
            pn.FlexBox(p["field"], p["manifold"], sizing_mode="stretch_width"),
            curves,
            sizing_mode="stretch_width",
        )
        transport = pn.Row(
            *self.buttons,
            self.speed_slider,
            align="center",
        )
        header = pn.Row(
            pn.pane.HTML(
                '<span style="font-size:1.9em;font-weight:700;color:#212529">gan2d</span>'
                '<span style="font-size:1.3em;color:#495057"> lab</span>',
                margin=(8, 24, 0, 4),
            ),
            self.preset_select,
            pn.Spacer(width=16),
            self.clock,
            align="center",
            sizing_mode="stretch_width",
            styles=HEADER_STYLE,
        )
        self.layout = pn.Column(
            header,
            pn.Row(transport, self.explain, sizing_mode="stretch_width"),
            self.url_alert,
            self.status_alert,
            self.diverged_box,
            pn.Row(self.sidebar, self.plots_area, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
            stylesheets=[CSS],
        )

    def __panel__(self):
        return self.layout

    # ------------------------------------------------------------------ session
    def start(self) -> None:
        """Start the trainer once the page has connected (a bare HTTP request for the
        page, a link preview say, then costs no trainer slot)."""
        pn.state.onload(self._connect)
        pn.state.on_session_destroyed(lambda context: self.close())

    def _connect(self) -> None:
        self._doc = pn.state.curdoc
        try:
            self.runner = Runner(self.config, self.settings.speed, on_frame=self._frame_ready)
        except ServerFull as err:
            self._show_status("danger", str(err))
            for button in self.buttons:
                button.disabled = True
            return
        self._callback = pn.state.add_periodic_callback(self._tick, period=TICK_MS)

    def close(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        if self.runner is not None:
            self.runner.stop()

    # ------------------------------------------------------------------ events
    def _on_settings(self, *events):
        if self._applying:
            return
        for e in events:
            w = self.widgets[e.name]
            if isinstance(w, pn.widgets.DiscreteSlider) and e.new not in w.values:
                w.options = _ladder_options(e.name, e.new)
            if w.value != e.new:
                w.value = e.new
        names = {e.name for e in events}
        if "dataset" in names:
            self.base = dataclasses.replace(
                self.base,
                data_std=DATASET_DEFAULT_STD.get(self.settings.dataset, self.base.data_std),
            )
        try:
            config = ls.settings_config(self.settings, self.base)
        except ValueError as err:
            self._show_status("warning", f"Not applied: {err}")
            self._applying = True
            try:
                self.settings.param.update({e.name: e.old for e in events})
                for e in events:
                    self.widgets[e.name].value = e.old
            finally:
                self._applying = False
            return
        self.config = self.base = config
        self._show_status(None)
        if self.runner is not None:
            self.runner.set_config(config)
        self._url_changed()

    def _on_preset(self, event):
        self.preset_select.value = event.new
        config = ls.preset_config(event.new)
        self._applying = True
        try:
            self.settings.param.update(ls.config_values(config))
            for name, value in ls.config_values(config).items():
                w = self.widgets[name]
                if isinstance(w, pn.widgets.DiscreteSlider) and value not in w.values:
                    w.options = _ladder_options(name, value)
                w.value = value
        finally:
            self._applying = False
        self.config = self.base = config
        self.explain.object = self._explain_text()
        if self.runner is not None:
            self.runner.reset(config)
        self._url_changed()

    def _on_speed(self, event):
        self.speed_slider.value = event.new
        if self.runner is not None:
            self.runner.set_speed(event.new)
        self._url_changed()

    def _on_plot_toggles(self, event):
        shown = set(event.new)
        hide = [h for h in self.settings.hide if h not in ls.PLOTS]
        hide += [k for k in ls.PLOTS if k not in shown]
        if hide != self.settings.hide:
            self.settings.hide = hide

    def _on_hide(self, event):
        self._apply_hide()
        self._url_changed()

    def _apply_hide(self):
        hide = set(self.settings.hide)
        self.sidebar.visible = "controls" not in hide
        for name, w in self.widgets.items():
            w.visible = name not in hide
        for key, pane in self.plot_panes.items():
            pane.visible = key not in hide
        shown = [k for k in ls.PLOTS if k not in hide]
        if self.plot_toggles.value != shown:
            self.plot_toggles.value = shown

    def _toggle_play(self, event=None):
        if self.runner is None:
            return
        if self.runner.playing:
            self.runner.pause()
        else:
            self.runner.play()
        self._sync_play_button()

    def _sync_play_button(self):
        playing = self.runner is not None and self.runner.playing
        name = "Pause" if playing else "Play"
        if self.play_button.label != name:
            self.play_button.label = name
            self.play_button.color = "primary" if playing else "success"

    def _step(self, mode):
        if self.runner is not None:
            self.runner.step(mode)
            self._sync_play_button()

    def _reset(self):
        if self.runner is not None:
            self.runner.reset(self.config)

    # ------------------------------------------------------------------ frames
    def _on_ack(self, event):
        if self.runner is not None and event.data == self._frame_no:
            self._awaiting_ack = False
            self._push()

    def _frame_ready(self):
        """Called from the trainer's thread: push the frame now if the page is waiting
        for one, rather than at the next tick."""
        doc = self._doc
        if doc is None or self._awaiting_ack or doc.session_context is None:
            return
        with contextlib.suppress(Exception):  # the session is closing
            doc.add_next_tick_callback(self._push_on_loop)

    def _push_on_loop(self):
        with set_curdoc(self._doc):
            self._push()

    def _connections(self) -> int | None:
        doc = pn.state.curdoc
        session = getattr(getattr(doc, "session_context", None), "session", None)
        return None if session is None else session.connection_count

    def _tick(self):
        # Bokeh destroys a closed tab's session only after ~15-30 s; stop its trainer
        # as soon as the tab has been gone for a moment.
        if self._connections() == 0:
            self._gone_since = self._gone_since or time.perf_counter()
            if time.perf_counter() - self._gone_since > GONE_S:
                self.close()
                return
        else:
            self._gone_since = None
        if self._awaiting_ack and time.perf_counter() - self._sent_at > ACK_TIMEOUT_S:
            self._awaiting_ack = False  # a lost acknowledgement must not stall the run
        self._push()
        self._sync_messages()
        self._sync_play_button()
        if (
            self._url_dirty_at is not None
            and time.perf_counter() - self._url_dirty_at > URL_SETTLE_S
        ):
            self._url_dirty_at = None
            self._write_url()

    def _push(self):
        if self._awaiting_ack or self.runner is None:
            return
        frame = self.runner.take_frame()
        if frame is None:
            return
        visible = {k: k not in self.settings.hide for k in ls.PLOTS}
        self._frame_no += 1
        with pn.io.hold():
            self.plots.update(frame, visible)
            self.clock.param.update(
                step=frame.step, version=frame.version, readout=self._readout_html(frame)
            )
            self.clock.frame = self._frame_no  # last: the page acts on this one
        self._awaiting_ack = True
        self._sent_at = time.perf_counter()

    def _sync_messages(self):
        messages = self.runner.messages()
        if messages == self._shown_messages:
            return
        self._shown_messages = messages
        diverged = messages.get("diverged") or messages.get("error")
        self.diverged_box.visible = bool(diverged)
        if diverged:
            self.diverged_alert.object = diverged[1]
        notes = [m for key, m in messages.items() if key in ("compile", "run") and m]
        if notes:
            self._show_status("info", " ".join(text for _, text in notes))
        elif self.status_alert.alert_type == "info":
            self._show_status(None)

    def _show_status(self, kind, text=""):
        if kind is None:
            self.status_alert.visible = False
            return
        self.status_alert.alert_type = kind
        self.status_alert.object = text
        self.status_alert.visible = True

    # ------------------------------------------------------------------ text
    def _readout_html(self, frame) -> str:
        sep = '<span class="sep">|</span>'
        if frame is None:
            return f'step <b class="gan2d-step">0</b>{sep}press Play'
        parts = [f'step <b class="gan2d-step">{frame.step:,}</b>']
        parts.append(f"{frame.steps_per_s:,.0f} steps/s")
        snap = frame.snap
        if "live_modes" in snap:
            k = len(snap["live_mode_counts"])
            parts.append(f"modes <b>{int(snap['live_modes'])}/{k}</b>")
            parts.append(f"HQ <b>{float(snap['live_hq']):.0f}%</b>")
        parts.append(f"W1 {float(snap['sliced_w1']):.3f} (sliced)")
        return sep.join(parts)

    def _explain_text(self) -> str:
        preset = PRESETS[self.settings.preset]
        return f"**{preset.name}** — {preset.summary}<br>*Look for:* {preset.watch}"

    # ------------------------------------------------------------------ URL
    def query(self) -> dict[str, str]:
        return ls.make_query(
            self.settings.preset, self.config, self.settings.speed, self.settings.hide
        )

    def _url_changed(self):
        self._url_dirty_at = time.perf_counter()

    def _write_url(self):
        location = pn.state.location
        if location is not None:
            location.search = "?" + urlencode(self.query())


def _extent(config: Config) -> float:
    from gan2d.data import data_extent

    return data_extent(config)


def build_page():
    """The whole page for one session: the lab and any optional tabs."""
    warm_in_background(ls.preset_config(ls.DEFAULT_PRESET))
    lab = Lab(query=ls.decode_session_args(pn.state.session_args))
    lab.start()
    tabs = optional_tabs()
    if not tabs:
        return lab
    return pn.Tabs(("Lab", lab), *tabs, dynamic=True, sizing_mode="stretch_width")
