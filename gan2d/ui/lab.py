"""The lab: one run, its controls, its plots, and the glue to its page and URL.

``Lab`` is a ``pn.viewable.Viewer``. Its state is a ``LabSettings`` (one parameter per
config field, plus preset, speed and hidden items); every control is a widget made from
one of those parameters (``from_param``), so widget and setting stay in step by
themselves. A change of settings becomes a ``Config`` and goes to the session's run
(``LabRun``), which the process-wide scheduler trains; frames come back through the
frame clock, paced by the page.
"""

from __future__ import annotations

import contextlib
import html
import time
from urllib.parse import urlencode

import panel as pn
import param
from panel.io.state import set_curdoc

from gan2d.core import points
from gan2d.core.config import SPECS, Config
from gan2d.core.data import data_extent
from gan2d.core.runs import Runs
from gan2d.presets import PRESETS
from gan2d.ui import settings as ls
from gan2d.ui.clock import FrameClock, quiet_periodic
from gan2d.ui.feed import busy, one_message, send, share_ids
from gan2d.ui.files import RunFiles
from gan2d.ui.guide import Guide
from gan2d.ui.history import FrameHistory, Timeline
from gan2d.ui.limits import keep_out_of_collections, max_sessions, release_memory_soon
from gan2d.ui.plots import LabPlots
from gan2d.ui.scheduler import scheduler
from gan2d.ui.session import LabRun
from gan2d.ui.share import SHARES, Share
from gan2d.ui.style import CSS, HEADER_STYLE, PRESENT_CSS, SIDEBAR_WIDTH
from gan2d.ui.widgets import Notice, Transport, in_session, status_line

RETRY_MS = 10  # a follower's frame that could not be written at once goes this soon
TICK_MS = 250  # housekeeping (a class has one per page); frames go when ready or acknowledged
URL_SETTLE_S = 0.3
ACK_TIMEOUT_S = 3.0
GONE_S = 2.0  # a tab without a connection this long is closed: its run stops
NOTICE_ROOM_PX = 46
MAP_PX, PRESENT_MAP_PX = 560, 420  # the critic map's side, normally and when presenting
PRESENT_TEXT_PX = 380
FOCUS_PX = 440  # a lesson step's chart beside the map, in the presenter view
CURVE_PLOTS = ("losses", "grads", "modes", "w1", "hist")
COPY_LINK_JS = """
const url = window.location.href;
try {
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(url);
  } else {
    const area = document.createElement("textarea");
    area.value = url;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  source.label = "Link copied";
} catch (err) {
  source.label = "Copy failed";
}
setTimeout(() => { source.label = "Copy link"; }, 1500);
"""
NOTEBOOK_TICK_MS = 150  # a notebook cell's frames: on a timer, with no acknowledgement


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


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


def ladder_slider(settings, name: str, label: str, **kw) -> pn.widgets.DiscreteSlider:
    """A slider over the values of a ladder parameter; a value that joins the ladder (a
    link's, say) joins the slider's stops, in order."""
    slider = pn.widgets.DiscreteSlider.from_param(settings.param[name], label=label, **kw)

    def follow(event):
        if event.new not in slider.values:
            values = sorted(set(slider.values) | {event.new})
            slider.options = {_fmt(v): v for v in values}
            slider.value = event.new

    settings.param.watch(follow, name)
    slider.options = {_fmt(v): v for v in sorted(settings.param[name].objects)}
    return _prompt(slider)


def control_widget(settings, name: str) -> pn.widgets.Widget:
    """The widget of one control, made from its parameter."""
    label = name.replace("_", " ")
    spec = SPECS[name]
    if name in ls.LADDERS:
        widget = ladder_slider(settings, name, label)
    elif spec.kind == "choice":
        widget = _prompt(pn.widgets.Select.from_param(settings.param[name], label=label))
    elif spec.kind == "bool":
        widget = pn.widgets.Checkbox.from_param(settings.param[name], label=label)
    else:
        widget = _prompt(pn.widgets.IntInput.from_param(settings.param[name], label=label))
    widget.description = spec.doc
    widget.sizing_mode = "stretch_width"
    return widget


class Lab(pn.viewable.Viewer):
    """One session's lab: settings, controls, plots and the run behind them."""

    def __init__(self, query: dict[str, str] | None = None, **params):
        super().__init__(**params)
        parsed = ls.parse_query(query or {})
        self.share: Share | None = None  # this lab's run, shared live
        self.following = SHARES.get(parsed.follow) if parsed.follow else None
        self._follow_number = 0  # the shared run's frame the page shows (0: none yet)
        self._fed: int | None = None  # the feed's frame the page's plots show
        self._retrying = False
        if self.following is not None:  # the teacher's settings, read only
            teacher = self.following.settings
            parsed.preset, parsed.speed = teacher.preset, teacher.speed
            parsed.hide, parsed.config = list(teacher.hide), ls.settings_config(teacher)
            parsed.lesson, parsed.step, parsed.challenge = self.following.guide
        self.settings = ls.LabSettings(
            preset=parsed.preset,
            speed=parsed.speed,
            hide=parsed.hide,
            present=parsed.present,
            **ls.config_values(parsed.config),
        )
        self.config = parsed.config
        # the lesson and its step (from 1), or the challenge, the lab is in
        self.lesson, self.lesson_step = parsed.lesson, parsed.step
        self.challenge = parsed.challenge
        self._focus: str | None = None  # the plot a lesson step talks about
        self._url_dirty_at = time.perf_counter() if parsed.warnings or query else None
        self._frame_no = 0
        self._sent_at = 0.0
        self._awaiting_ack = False
        self._shown_messages = None
        self._callback = None
        self._doc = None
        self._gone_since = None
        self.runner: LabRun | None = None  # made when the page connects
        self.on_first_frame = None  # called once the page has its first frame
        self._last_frame = None
        self._hidden = False
        self._notebook = False  # shown in a notebook cell: see _repr_mimebundle_

        # own points this lab trains on (drawn, uploaded, from a file): kept here too, so
        # the server's store of point sets (a bounded one) can always be given them back
        self._own_points = None
        try:
            extent = data_extent(self.config)
        except ValueError:  # a shared run's points this server no longer holds
            extent = 3.5
        self.plots = LabPlots(extent=extent)
        self.history = FrameHistory()
        self.notice = Notice()
        self._build_widgets()
        self._build_layout()
        if self.following is not None:  # the page takes the shared run's feed
            share_ids(self.plots, self.clock)
        if parsed.warnings:
            self.url_alert.object = "**Some link settings were ignored:**\n\n" + "\n".join(
                f"- {html.escape(w)}" for w in parsed.warnings
            )
            self.url_alert.visible = True
        if parsed.follow and self.following is None:
            self.notice.show(
                "warning",
                f"No live run has the code {parsed.follow}: it may have ended. This is a "
                "lab of your own.",
            )
        self._set_read_only(self.following is not None)  # and shows the guide

        self.settings.param.watch(self.notice.guard(self._on_settings), list(SPECS))
        self.settings.param.watch(self.notice.guard(self._on_preset), ["preset"])
        self.settings.param.watch(self._on_speed, ["speed"])
        self.settings.param.watch(self._on_hide, ["hide"])
        self.settings.param.watch(lambda e: self._apply_present(), ["present"])
        self.clock.on_msg(self._on_ack)
        self._apply_present()
        self._apply_hide()

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self):
        s = self.settings
        self.widgets = {name: control_widget(s, name) for name in ls.CONTROL_FIELDS}
        self.preset_select = _prompt(
            pn.widgets.Select.from_param(s.param.preset, label="Preset", width=220)
        )
        self.speed_slider = ladder_slider(s, "speed", "steps per frame", width=220)
        self.plot_toggles = pn.widgets.CheckButtonGroup(
            label="Plots",
            options={label: key for key, label in ls.PLOTS.items()},
            value=[k for k in ls.PLOTS if k not in s.hide],
            color="light",
            sizing_mode="stretch_width",
            orientation="vertical",
        )
        self.plot_toggles.param.watch(self._on_plot_toggles, "value")
        self.transport = Transport(
            on_play=self._play,
            on_pause=self._pause,
            on_step=lambda: self._step("both"),
            on_step_d=lambda: self._step("d"),
            on_step_g=lambda: self._step("g"),
            on_reset=self._reset,
            speed=self.speed_slider,
        )
        self.clock = FrameClock(readout=self._readout_html(None), stylesheets=[CSS])
        self.copy_button = pn.widgets.Button(label="Copy link", width=110, align="center")
        # in the page: the address bar holds the whole state (settings, seed, hidden
        # items, presenter view); the clipboard API needs https or localhost, so a
        # classroom server on plain http gets the older copy command instead
        # (``source`` in the code is the button: passed in ``args`` it stayed in Panel's
        # registry of callbacks, a weak mapping whose value then held its key, for good)
        self.copy_button.js_on_click(code=COPY_LINK_JS)
        self.share_button = pn.widgets.Button(label="Share live", width=110, align="center")
        self.share_button.on_click(lambda e: self.notice.guard(self._share_live)())
        self.share_line = status_line("", css_classes=["gan2d-status"], visible=False)
        self.mine_button = pn.widgets.Button(label="Make it mine", color="primary", width=140)
        self.mine_button.on_click(lambda e: self._make_it_mine())
        self.follow_line = status_line("", css_classes=["gan2d-status"])
        self.follow_bar = pn.Row(self.follow_line, self.mine_button, visible=False)
        self.files = RunFiles(self)
        self.timeline = Timeline(self.history, on_show=self._show_kept, on_live=self._show_live)
        self.guide = Guide(self)

    def _build_layout(self):
        self.explain = pn.pane.Markdown(
            self._explain_text(), styles={"font-size": "1.05em"}, sizing_mode="stretch_width"
        )
        # the preset's text sits beside the transport bar; in the presenter view, beside
        # the map, where a projector has room for it at a large size
        self.explain_top = pn.Column(self.explain, self.share_line, sizing_mode="stretch_width")
        self.explain_side = pn.Column(width=PRESENT_TEXT_PX, visible=False)
        self.url_alert = pn.pane.Alert("", alert_type="warning", visible=False)
        self.diverged_alert = Notice(margin=(0, 0, 0, 0))
        diverged_reset = pn.widgets.Button(label="↺ Reset the run", color="danger")
        diverged_reset.on_click(lambda e: self._reset())
        self.diverged_box = pn.Row(self.diverged_alert.pane, diverged_reset, visible=False)

        groups = []
        for group, names in ls.CONTROL_GROUPS.items():
            groups.append(pn.pane.Markdown(f"**{group}**", margin=(8, 5, 0, 5)))
            groups.extend(self.widgets[n] for n in names)
            if group == "Data":
                groups.append(self._on_demand("Your own data: draw, open a file…", "data_panel"))
        groups.append(pn.pane.Markdown("**Plots shown**", margin=(8, 5, 0, 5)))
        groups.append(self.plot_toggles)
        groups.append(pn.pane.Markdown("**Take it home**", margin=(8, 5, 0, 5)))
        groups.append(self._on_demand("Save: picture, animation, config, weights…", "save_panel"))
        self.sidebar = pn.Column(
            *groups,
            width=SIDEBAR_WIDTH,
            scroll=True,
            styles={"max-height": "calc(100vh - 170px)"},
        )
        self.plot_panes = {
            key: pn.pane.Bokeh(
                fig, sizing_mode="stretch_width" if key not in ("field", "manifold") else "fixed"
            )
            for key, fig in self.plots.figures().items()
        }
        p = self.plot_panes
        curves = pn.FlexBox(
            *(pn.Column(p[k], min_width=340, styles={"flex": "1 1 380px"}) for k in CURVE_PLOTS),
            sizing_mode="stretch_width",
        )
        # the curve charts sit in slots: the presenter view moves the one a lesson step
        # talks about up beside the map (``set_focus``)
        self.curve_slots = {k: curves.objects[i] for i, k in enumerate(CURVE_PLOTS)}
        self.focus_slot = pn.Column(width=FOCUS_PX, visible=False)
        self._opening = False  # open_base sets many settings: one restart, at the end
        self.plots_area = pn.Column(
            pn.FlexBox(
                p["field"],
                self.explain_side,
                self.focus_slot,
                p["manifold"],
                sizing_mode="stretch_width",
            ),
            self.timeline,
            curves,
            sizing_mode="stretch_width",
        )
        header = pn.Row(
            pn.pane.HTML(
                '<span style="font-size:1.9em;font-weight:700;color:#212529">gan2d</span>'
                '<span style="font-size:1.3em;color:#495057"> lab</span>',
                margin=(8, 24, 0, 4),
            ),
            self.preset_select,
            self.guide.index,
            pn.Spacer(width=16),
            self.clock,
            align="center",
            sizing_mode="stretch_width",
            styles=HEADER_STYLE,
        )
        self.layout = pn.Column(
            header,
            self.follow_bar,
            pn.Row(
                self.transport,
                self.copy_button,
                self.share_button,
                self.explain_top,
                sizing_mode="stretch_width",
            ),
            self.url_alert,
            # room kept for one line of notice, so that one coming or going does not
            # move the plots under a class's eyes
            pn.Column(self.notice.pane, min_height=NOTICE_ROOM_PX, sizing_mode="stretch_width"),
            self.diverged_box,
            pn.Row(self.sidebar, self.plots_area, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
            stylesheets=[CSS],
        )

    def _on_demand(self, label: str, panel: str) -> pn.Column:
        """A button that shows one of the files panels when pressed. Until then its
        widgets are not on the page: every model on a page costs a little in each of its
        frames (Bokeh walks them all for every update it sends)."""
        button = pn.widgets.Button(label=label, color="light", sizing_mode="stretch_width")
        slot = pn.Column(button, sizing_mode="stretch_width", margin=0)
        button.on_click(lambda _e: setattr(slot, "objects", [getattr(self.files, panel)]))
        return slot

    def __panel__(self):  # the page puts the guide outside its tabs; alone, beside the lab
        return pn.Row(self.guide.panel, self.layout, sizing_mode="stretch_width")

    # ------------------------------------------------------------------ notebook
    def _repr_mimebundle_(self, include=None, exclude=None):
        """Shown in a notebook cell: the lab starts its run there (a served page starts
        it through ``start``). Frames go out on a timer and are pushed to the cell."""
        if not self._notebook and not in_session() and self.runner is None:
            self._notebook = True
            if "filedropper" not in (pn.state._extensions or []):
                pn.extension("filedropper")  # the upload box's script, into this cell
            self.connect()
            self._callback = pn.state.add_periodic_callback(self._tick, period=NOTEBOOK_TICK_MS)
        return super()._repr_mimebundle_(include, exclude)

    def _push_to_cell(self) -> None:
        """Send this frame's changes to the notebook cells showing the lab. Panel sends
        its own widgets' changes; Bokeh figures changed in place need this push, and
        only while the cell's connection is open (Panel would retry a closed one)."""
        for ref in self.layout._models:
            view = pn.state._views.get(ref)
            comm = view[3] if view else None
            if comm is not None and getattr(comm, "_comm", None) is not None:
                pn.io.notebook.push_on_root(ref)

    def play(self) -> None:
        """Play (as the Play button does; for notebooks and scripts)."""
        self._play()

    def pause(self) -> None:
        """Pause (as the Pause button does)."""
        self._pause()

    @property
    def shown_step(self) -> int:
        """The step of the latest frame drawn (0 before the first)."""
        return 0 if self._last_frame is None else self._last_frame.step

    # ------------------------------------------------------------------ session
    def start(self) -> None:
        """Make the run once the page has connected (a bare HTTP request for the page,
        a link preview say, then costs nothing)."""
        pn.state.onload(self.connect)
        pn.state.on_session_destroyed(lambda context: self.close())

    def connect(self) -> None:
        self._doc = pn.state.curdoc
        served = in_session()
        if served:
            keep_out_of_collections()  # the page's objects live as long as it does
        if self.following is not None:  # a follower costs frame delivery, no run
            self.following.watch(self._frame_ready)
            if served:
                self._callback = quiet_periodic(self._tick, TICK_MS)
            return
        open_labs, limit = scheduler().count(LabRun), max_sessions()
        if open_labs >= limit:
            self.notice.show(
                "danger",
                f"This server is full: it holds {open_labs} labs, its limit. Try again in a "
                "minute (a closed tab frees its place), or ask whoever runs the server to "
                "raise GAN2D_MAX_SESSIONS.",
            )
            self.transport.disable()
            return
        self.runner = LabRun(self.config, self.settings.speed, on_frame=self._frame_ready)
        self.runner.set_stop_at(self._stop_at)
        if served:
            self._callback = quiet_periodic(self._tick, TICK_MS)

    def close(self) -> None:
        if self._doc is not None:  # a page's session (not a test's or a notebook's lab)
            release_memory_soon()
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        if self.share is not None:
            SHARES.end(self.share)  # its followers keep their last frame
            self.share = None
        self._stop_following()
        if self.runner is not None:
            self.runner.close()

    # ------------------------------------------------------------------ events
    def _on_settings(self, *events):
        """A setting changed: the new config goes to the run. An invalid combination
        (a batch that is not a multiple of the generators, say) is refused with a
        notice and the settings go back; applying a config twice does nothing."""
        if self._opening:
            return
        names = {e.name for e in events}
        own = self._own_points
        if self.settings.dataset == "custom" and own is None and not self.settings.custom_path:
            self.settings.param.update({e.name: e.old for e in events})
            raise ValueError(
                "there are no points of yours yet: draw some on the map or open a file of "
                "points (under Data)"
            )
        # the points go with "your points" only; the lab keeps them for a return
        if self.settings.dataset != "custom":
            path = ""
        elif own is not None:
            path = points.register(own)
        else:
            path = self.settings.custom_path
        if path != self.settings.custom_path:
            with param.parameterized.discard_events(self.settings):
                self.settings.custom_path = path
        try:
            config = ls.settings_config(self.settings)
            if "dataset" in names and "data_std" not in names:
                # choosing a dataset brings its usual std (the core's one rule for it)
                config = Config.from_dict({"dataset": config.dataset}, base=config)
        except ValueError:
            self.settings.param.update({e.name: e.old for e in events})
            raise
        if config == self.config:
            return
        self.config = config
        if config.data_std != self.settings.data_std:
            self.settings.data_std = config.data_std
        self.explain.object = self._explain_text()
        self.notice.show(None)
        if self.runner is not None:  # in a challenge, every attempt starts from its seed
            self.runner.set_config(config, restart=self.challenge is not None)
        self.url_changed()

    def _on_preset(self, event):
        if self._opening:
            return
        self.settings.param.update(
            speed=PRESETS[event.new].speed, **ls.config_values(ls.preset_config(event.new))
        )
        self.explain.object = self._explain_text()
        if self.runner is not None:
            self.runner.reset(self.config)
        self.url_changed()

    def open_base(self, base: ls.Base, play: bool = False) -> None:
        """Open a lesson step's or a challenge's start (``self.lesson`` / ``challenge``
        say which): its preset, settings, speed and hidden items, as one restart."""
        if self.following is not None:
            raise ValueError("this lab follows a shared run: press Make it mine first")
        self.timeline.go_live()
        self._opening = True
        try:
            self.settings.param.update(
                preset=base.preset,
                speed=base.speed,
                hide=list(base.hide),
                **ls.config_values(base.config),
            )
        finally:
            self._opening = False
        self.config = base.config
        self.explain.object = self._explain_text()
        self.notice.show(None)
        self.guide_changed()
        if self.runner is not None:
            self.runner.set_speed(base.speed)
            self.runner.reset(base.config)
            if play:
                self._play()
            else:
                self._pause()
        self.url_changed()

    def guide_changed(self) -> None:
        """A lesson or challenge was opened or closed: its locks, its budget, and where
        the presenter view puts the preset's text."""
        self._lock_challenge()
        self._apply_present()
        if self.share is not None:  # followers open the same step
            self.share.guide = self._guide_place

    @property
    def _guide_place(self) -> tuple:
        return self.lesson, self.lesson_step, self.challenge

    def set_locked(self, names) -> None:
        """Lock these settings' controls (a challenge's fixed settings) and the preset."""
        for name, widget in self.widgets.items():
            widget.disabled = name in names
        self.preset_select.disabled = bool(names)

    @property
    def _stop_at(self) -> int | None:
        """Where play stops: a challenge's budget (None: it does not)."""
        challenge = self.guide.challenge
        return None if challenge is None else challenge.budget

    def _lock_challenge(self) -> None:
        challenge = self.guide.challenge
        self.set_locked(() if challenge is None else challenge.locked(ls.CONTROL_FIELDS))
        if self.runner is not None:
            self.runner.set_stop_at(self._stop_at)

    def set_focus(self, plot: str | None) -> None:
        """The chart a lesson step talks about; the presenter view shows it beside the
        map (it would be below a projector's fold)."""
        self._focus = plot
        self._place_focus()

    def _place_focus(self) -> None:
        key = self._focus if self.settings.present and self._focus in CURVE_PLOTS else None
        for k, slot in self.curve_slots.items():
            if k != key and not slot.objects:
                slot.objects = [self.plot_panes[k]]
        if key is not None:
            self.curve_slots[key].objects = []
            self.focus_slot.objects = [self.plot_panes[key]]
        else:
            self.focus_slot.objects = []
        self.focus_slot.visible = key is not None

    def on_loop(self, fn) -> None:
        """Run ``fn`` on this page's event loop (from a worker thread)."""
        doc = self._doc
        if doc is None or doc.session_context is None:
            fn()
            return

        def run():
            with set_curdoc(doc):
                fn()

        with contextlib.suppress(Exception):  # the session is closing
            doc.add_next_tick_callback(run)

    def page_url(self, query: dict[str, str]) -> str:
        """The address of this page with ``query`` (a path only, outside a server)."""
        location = pn.state.location
        base = "/app"
        if location is not None and location.hostname:
            port = f":{location.port}" if location.port else ""
            base = f"{location.protocol}//{location.hostname}{port}{location.pathname}"
        return f"{base}?{urlencode(query)}"

    def _on_speed(self, event):
        if self.runner is not None:
            self.runner.set_speed(event.new)
        self.url_changed()

    def _on_plot_toggles(self, event):
        shown = set(event.new)
        hide = [h for h in self.settings.hide if h not in ls.PLOTS]
        hide += [k for k in ls.PLOTS if k not in shown]
        if hide != self.settings.hide:
            self.settings.hide = hide

    def _on_hide(self, event):
        self._apply_hide()
        self.url_changed()

    def _apply_present(self) -> None:
        """The presenter view (``present=1``): large text and points, a map that fits a
        1280 x 720 projector with the readout and the preset's text, no sidebar."""
        on = self.settings.present
        self.plots.set_presenting(on, PRESENT_MAP_PX if on else MAP_PX)
        self.clock.stylesheets = [CSS, PRESENT_CSS] if on else [CSS]
        self.explain.styles = {"font-size": "1.4em" if on else "1.05em"}
        self.explain_top.objects = [self.share_line] if on else [self.explain, self.share_line]
        guided = self.lesson is not None or self.challenge is not None
        self.explain_side.objects = [self.explain] if on and not guided else []
        self.explain_side.visible = on and not guided
        self.guide.set_presenting(on)
        self.guide.index.visible = not on  # the projector's header keeps room for the readout
        self._place_focus()
        if on and "controls" not in self.settings.hide:
            self.settings.hide = [*self.settings.hide, "controls"]
        self.url_changed()

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

    def _play(self):
        self.timeline.go_live()
        if self.runner is not None:
            self.runner.play()
        self._sync_play_button()

    def _pause(self):
        if self.runner is not None:
            self.runner.pause()
        self._sync_play_button()

    def _sync_play_button(self):
        playing = self.runner is not None and self.runner.playing
        if playing != self.transport.playing:
            self.transport.playing = playing
            self.timeline.sync(paused=self._paused())

    def _paused(self) -> bool:
        """Whether this lab's own run stands still (the timeline can be used)."""
        return self.runner is not None and not self.runner.playing

    def _step(self, mode):
        self.timeline.go_live()
        if self.runner is not None:
            self.runner.step(mode)
            self._sync_play_button()

    def _reset(self):
        self.timeline.go_live()
        self.hold_points()
        if self.runner is not None:
            self.runner.reset(self.config)

    # ------------------------------------------------------------------ own data, files
    def _own_run_needed(self) -> None:
        if self.runner is None:
            raise ValueError(
                "this lab follows a shared run: press Make it mine first"
                if self.following is not None
                else "this lab has no run yet"
            )

    def use_points(self, pts, what: str) -> None:
        """Train on these points (drawn or uploaded): ``dataset=custom``, a restart."""
        self._own_run_needed()
        self._own_points = pts
        name = points.register(pts)
        config = Config.from_dict({"dataset": "custom", "custom_path": name}, base=self.config)
        self.settings.param.update(ls.config_values(config))
        self._reset()
        self.notice.show("info", f"Training on {what}. Modes and HQ do not apply; W1 does.")

    def hold_points(self) -> None:
        """Give this lab's own points back to the server's store (it keeps only the
        most recently used sets), before anything reads them by name."""
        if self._own_points is not None:
            points.register(self._own_points)

    def download_failed(self, text: str) -> None:
        self.notice.show("warning", f"Not saved: {text}")

    def load_run(self, config: Config, preset: str | None, state=None) -> None:
        """Open a run's config (the run restarts from its seed) or its weights (the run
        goes on from their step: ``state`` is one run's training state)."""
        self._own_run_needed()
        self.timeline.go_live()
        if config.dataset == "custom":
            self._own_points = points.lookup(config.custom_path)
        if preset in PRESETS and preset != self.settings.preset:
            self.settings.preset = preset  # its settings, then the file's on top
        self.settings.param.update(ls.config_values(config))
        self.config = config
        if state is None:
            self._reset()
        else:
            if self.runner is None:
                raise ValueError("this lab has no run of its own to load weights into")
            runs = Runs([config])
            notice = "Loaded the weights: the run goes on from step {step:,}."
            self._own_run(config, runs, runs.from_state(state), notice)
        self.url_changed()

    def shown_frame(self):
        """The frame on the screen: a replayed one, or the latest."""
        return self.timeline.shown or self._last_frame

    def _visible(self) -> dict[str, bool]:
        return {k: k not in self.settings.hide for k in ls.PLOTS}

    def _show_kept(self, frame) -> None:
        self.plots.show_still(frame, self._visible())
        self.clock.readout = self._readout_html(frame, replay=True)

    def _show_live(self) -> None:
        if self._last_frame is not None:
            self.plots.show_still(self._last_frame, self._visible())
            self.clock.readout = self._readout_html(self._last_frame)
        self.plots.mark_step(None)

    # ------------------------------------------------------------------ frames
    def _on_ack(self, event):
        """A message from the page: the number of the frame it has painted, or
        ``{"visible": bool}`` when its browser tab is hidden or shown."""
        data = event.data
        if self.runner is None and self.following is None:
            return
        if isinstance(data, dict):
            if self.runner is None:
                return
            if "visible" in data:
                self._hidden = not data["visible"]
                self.runner.set_visible(not self._hidden)
                self.clock.readout = self._readout_html(self._last_frame)
            return
        if data == self._frame_no:
            self._awaiting_ack = False
            self._push()

    def _frame_ready(self):
        """Called from a worker: push the frame now if the page is waiting for one,
        rather than at the next tick."""
        doc = self._doc
        if doc is None or self._awaiting_ack or doc.session_context is None:
            return
        with contextlib.suppress(Exception):  # the session is closing
            doc.add_next_tick_callback(self._push_on_loop)

    def _push_on_loop(self):
        self._retrying = False
        with set_curdoc(self._doc):
            self._push()

    def _push_soon(self) -> None:
        if not self._retrying:
            self._retrying = True
            with contextlib.suppress(Exception):  # the session is closing
                self._doc.add_timeout_callback(self._push_on_loop, RETRY_MS)

    def _connections(self) -> int | None:
        doc = pn.state.curdoc
        session = getattr(getattr(doc, "session_context", None), "session", None)
        return None if session is None else session.connection_count

    def _tick(self):
        # Bokeh destroys a closed tab's session only after ~15-30 s; stop its run as
        # soon as the tab has been gone for a moment.
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
        if self.following is not None:
            self._sync_following()
        elif self.runner is not None:
            self._sync_messages()
            self._sync_play_button()
        if self.share is not None:
            self._show_share()
        if (
            self._url_dirty_at is not None
            and time.perf_counter() - self._url_dirty_at > URL_SETTLE_S
        ):
            self._url_dirty_at = None
            self._write_url()

    def _next_frame(self):
        """The next frame to show: the run's, or the shared run's latest (a follower)."""
        if self.following is not None:
            feed = self.following.feed()
            if self._fed is not None and self._fed < feed.number:  # behind: catch up
                got = feed.number, feed.frame
            else:
                got = self.following.latest(self._follow_number)
            if got is None:
                self.following.run.want_frame()
                return None
            self._follow_number, frame = got
            self._follow_settings(frame)
            return frame
        return None if self.runner is None else self.runner.take_frame()

    def _push(self):
        if self._awaiting_ack:
            return
        if self._fed is not None and self.following is not None and busy(self._doc):
            self._push_soon()  # the page's connection is in the middle of a message
            return
        frame = self._next_frame()
        if frame is None:
            return
        visible = self._visible()
        self._frame_no += 1
        self._last_frame = frame
        self.history.add(frame)
        with one_message(self._doc):  # the frame's patch in one write
            if self.timeline.replaying:
                self.timeline.go_live()
            if self.following is not None:
                fed = self._feed_plots(frame, visible)
            else:
                fed = False
                self.plots.update(frame, visible)
            if fed:  # the feed's patches carried the clock: the page acknowledges its number
                self._frame_no = self.following.feed().number  # (``_leave_feed`` syncs the rest)
            else:  # the frame's number last: the page acts on it
                self.clock.show(
                    step=frame.step,
                    version=frame.version,
                    readout=self._readout_html(frame),
                    frame=self._frame_no,
                )
            if self._paused():  # while playing, the timeline waits for a pause
                self.timeline.sync(paused=True)
            self.guide.on_frame(frame)
        if self._notebook:  # no page to acknowledge: the timer paces the frames
            self._push_to_cell()
            return
        self._awaiting_ack = True
        self._sent_at = time.perf_counter()
        if self._frame_no == 1 and self.on_first_frame is not None:
            self.on_first_frame()

    def _feed_plots(self, frame, visible) -> bool:
        """A follower's plots: the shared run's feed makes the frame's patch once for
        every follower, and this page gets the ones it has not had yet, as they are
        (see ``gan2d.ui.feed``); or, when it has none yet or has fallen too far behind
        (or outside a session's callback), the feed's plots through Bokeh as usual.
        True when the feed's patches went (they set the page's clock too)."""
        feed = self.following.feed()
        feed.advance(self._follow_number, frame, visible, lambda: self._readout_html(frame))
        patches = None if self._fed is None else feed.since(self._fed)
        sent = bool(patches) and send(self._doc, patches)
        if not sent and patches != []:  # (none: the page shows the feed's plots already)
            self.plots.copy_from(feed.plots)
        self._fed = feed.number
        self.plots.show_titles(frame, visible)
        return sent

    def _leave_feed(self) -> None:
        """Stop taking the feed: the server's copy of the plots becomes what the page
        shows (the feed's plots), so that this page's own frames patch it as usual."""
        if self._fed is not None and self.following is not None:
            feed = self.following.feed()
            self.plots.copy_from(feed.plots)
            clock = feed.clock  # the page's clock shows the feed's: the server's copy too
            self.clock.show(step=clock.step, version=clock.version, readout=clock.readout,
                            frame=clock.frame)  # fmt: skip
        self._fed = None

    def curve_history(self) -> dict:
        """Every curve on the page as (steps, values) (a follower's: the feed's)."""
        fed = self._fed is not None and self.following is not None
        return (self.following.feed().plots if fed else self.plots).curve_history()

    def _sync_messages(self):
        messages = self.runner.messages()
        if messages == self._shown_messages:
            return
        self._shown_messages = messages
        stopped = messages.get("diverged") or messages.get("error")
        self.diverged_box.visible = bool(stopped)
        self.diverged_alert.show("danger" if stopped else None, stopped[1] if stopped else "")
        notes = [m for key, m in messages.items() if key in ("compile", "run") and m]
        if notes:
            self.notice.show("info", " ".join(text for _, text in notes))
        elif self.notice.kind == "info":
            self.notice.show(None)

    # ------------------------------------------------------------------ sharing
    def _share_live(self) -> None:
        """Share this lab's run live: a code and a link for followers."""
        if self.runner is None:
            raise ValueError("the lab has no run yet; wait for the first frame")
        if self.share is None:
            self.share = SHARES.new(self.runner, self.settings)
            self.share.guide = self._guide_place
            if self._last_frame is not None:  # a follower of a paused run sees it at once
                self.share.publish(self._last_frame)
        self._show_share()

    def _show_share(self) -> None:
        code = self.share.code
        link = self.page_url({"follow": code})
        n = self.share.followers
        self.share_line.value = html.escape(
            f"Live: code {code}. Students open {link} ({n} following)"
        )
        self.share_line.visible = True
        self.share_button.disabled = True

    def _set_read_only(self, read_only: bool) -> None:
        """A follower sees the teacher's settings and cannot change them."""
        for widget in [*self.widgets.values(), self.preset_select, self.speed_slider]:
            widget.disabled = read_only
        self.plot_toggles.disabled = read_only
        self.transport.disable(read_only)
        self.share_button.visible = not read_only
        self.files.set_read_only(read_only)
        self.guide.set_read_only(read_only)
        if not read_only:
            self._lock_challenge()
        self.follow_bar.visible = read_only
        if read_only:
            self.follow_line.value = html.escape(
                f"Following the shared run {self.following.code}: read only. "
                "Make it mine to continue it in a lab of your own."
            )

    def _follow_settings(self, frame) -> None:
        """Show the teacher's preset, plots and settings as they change."""
        teacher = self.following.settings
        if teacher.preset != self.settings.preset:
            self.settings.preset = teacher.preset
        if list(teacher.hide) != self.settings.hide:
            self.settings.hide = list(teacher.hide)
        if frame.config != self.config:
            self.settings.param.update(ls.config_values(frame.config))

    def _stop_following(self) -> None:
        if self.following is not None:
            self.following.unwatch(self._frame_ready)
            self.following = None

    def _sync_following(self) -> None:
        if self.following.guide != self._guide_place:  # the teacher's lesson step
            self.lesson, self.lesson_step, self.challenge = self.following.guide
            self.guide.show()
        if self.following.ended:
            self._leave_feed()
            self._stop_following()
            self.mine_button.disabled = True
            self.follow_line.value = html.escape(
                "The shared run has ended: its last frame stays. Open the page without "
                "'?follow=' for a lab of your own."
            )

    def _make_it_mine(self) -> None:
        """Copy the shared run (settings and weights) into a run of this page's own."""
        if self.following is None:
            return
        self.mine_button.disabled = True
        self.follow_line.value = "Copying the shared run..."
        self.following.run.request_copy(self._receive_copy)

    def _receive_copy(self, config, runs, state) -> None:
        """From a worker: the copy is ready; the page's own loop takes it over."""
        self._copy = (config, runs, state)
        doc = self._doc
        if doc is None:
            self._become_own()
            return
        with contextlib.suppress(Exception):  # the session is closing
            doc.add_next_tick_callback(self._become_own_on_loop)

    def _become_own_on_loop(self) -> None:
        with set_curdoc(self._doc):
            self._become_own()

    def _become_own(self) -> None:
        config, runs, state = self._copy
        self._copy = None
        self._leave_feed()
        self._stop_following()
        self.settings.param.update(ls.config_values(config))
        self.config = config
        self._set_read_only(False)  # the run's notice says where it goes on from
        self._own_run(config, runs, state)
        self.url_changed()

    def _own_run(self, config: Config, runs, state, notice: str | None = None) -> None:
        """A run of this page's own that goes on from ``state`` (stacked for ``runs``);
        a live share of the old run moves to it."""
        old = self.runner
        self._awaiting_ack = False
        extra = {} if notice is None else {"start_notice": notice}
        self.runner = LabRun(
            config,
            self.settings.speed,
            on_frame=self._frame_ready,
            start=(runs, state),
            **extra,
        )
        if self.share is not None:
            self.share.move_to(self.runner)
        if old is not None:
            old.close()

    # ------------------------------------------------------------------ text
    def _readout_html(self, frame, replay: bool = False) -> str:
        sep = '<span class="sep">|</span>'
        if replay:
            last = self.history.frames[-1].step if self.history.frames else frame.step
            return (
                f'replaying step <b class="gan2d-step">{frame.step:,}</b> of {last:,}'
                f"{sep}drag the timeline, or press Live"
            )
        if self._hidden:
            step = 0 if frame is None else frame.step
            watched = self.share is not None and self.share.followers > 0
            note = "training goes on for your followers" if watched else "training paused"
            return f'step <b class="gan2d-step">{step:,}</b>{sep}tab hidden: {note}'
        if frame is None:
            return f'step <b class="gan2d-step">0</b>{sep}press Play'
        parts = [f'step <b class="gan2d-step">{frame.step:,}</b>']
        if self._stop_at is not None:  # a challenge's budget
            parts[0] += f" of {self._stop_at:,} (budget)"
        elif not self._modified:  # how far along the preset's run it is
            parts[0] += f" of {PRESETS[self.settings.preset].steps:,}"
        parts.append(f"{frame.steps_per_s:,.0f} steps/s")
        snap = frame.snap
        if "live_modes" in snap:
            k = len(snap["live_mode_counts"])
            parts.append(f"modes <b>{int(snap['live_modes'])}/{k}</b>")
            parts.append(f"HQ <b>{float(snap['live_hq']):.0f}%</b>")
        elif frame.config.dataset == "custom":
            parts.append("modes, HQ: none in your data")
        parts.append(f"W1 {float(snap['sliced_w1']):.3f} (sliced)")
        others = scheduler().sharing(besides=self.runner)
        if others > 0:
            shared = f"sharing the server with {others} other run{'s' * (others > 1)}"
            if frame.frame_steps is not None and frame.frame_steps < self.settings.speed:
                # the run keeps its pictures moving with fewer steps a frame (session.py)
                shared += f": {frame.frame_steps} step{'s' * (frame.frame_steps > 1)} a frame"
                shared += f", not {self.settings.speed}"
            parts.append(shared)
        return sep.join(parts)

    def _explain_text(self) -> str:
        """The preset's two lines, marked as modified once the settings leave it (the
        text then describes the preset as it comes, not this run)."""
        preset = PRESETS[self.settings.preset]
        changed = self._modified = self._changed_from_preset()  # the readout uses it too
        head = f"**{preset.name}**"
        if changed:
            head += f" *(modified: {', '.join(changed)}; the text is about the preset as it comes)*"
        return f"{head} — {preset.summary}<br>*Look for:* {preset.watch}"

    def _changed_from_preset(self) -> list[str]:
        """The settings in which this run differs from its preset (the seed aside)."""
        preset = self.settings.preset
        query = ls.make_query(preset, self.config, PRESETS[preset].speed, [])
        return [k for k in query if k not in ("preset", "seed", "custom_path")]

    # ------------------------------------------------------------------ URL
    def query(self) -> dict[str, str]:
        if self.following is not None:
            return {"follow": self.following.code}
        s = self.settings
        return ls.make_query(
            s.preset,
            self.config,
            s.speed,
            s.hide,
            s.present,
            self.lesson,
            self.lesson_step,
            self.challenge,
        )

    def url_changed(self):
        self._url_dirty_at = time.perf_counter()

    def _write_url(self):
        location = pn.state.location
        if location is not None:
            location.search = "?" + urlencode(self.query())
