"""The pieces every tab shares: the transport bar, notice and status lines, the sidebar
of controls, and whether the code runs in a served session.

**Transport.** Play / pause, single steps, reset and speed, laid out the same way on
every tab (a wide toggle first, then the steps, then reset, then the speed), with
plain-word labels (symbols such as "⏸" render as empty boxes in some browsers' fonts).
``playing`` says which label the toggle shows; the tab sets it from its own state.

**Text that changes while a tab may be hidden** (notices, status lines) is a widget
(``StaticText``), never a Markdown pane. The page's tabs are built when first shown and
detached when hidden; Panel re-renders a detached Markdown pane with links to its
stylesheets on the internet (its CDN), which a classroom without internet cannot load.

**Errors reach the page.** Without ``Notice.guard``, an exception inside a widget
callback or a parameter watcher goes only to the server log, and the page keeps
showing a setting that never took effect; guarded, it is shown on the tab ("Not
applied: ...") and logged once, and the tab keeps working.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable

import panel as pn
import param

from gan2d.ui.style import SIDEBAR_WIDTH

log = logging.getLogger("gan2d.app")

NOTICE_CSS = """
:host { width: 100%; }
.bk-clearfix, div { font-size: 1.05em; }
:host(.gan2d-notice) { border-radius: 6px; padding: 8px 14px; margin: 4px 0; }
:host(.info) { background: #e7f5ff; color: #1864ab; border: 1px solid #a5d8ff; }
:host(.warning) { background: #fff9db; color: #7c5a00; border: 1px solid #ffe066; }
:host(.danger) { background: #fff5f5; color: #c92a2a; border: 1px solid #ffc9c9; }
"""


def status_line(text: str = "", **kw) -> pn.widgets.StaticText:
    """A line of plain text that a tab rewrites as it works."""
    return pn.widgets.StaticText(value=html.escape(text), **kw)


class Notice:
    """One alert line on a tab; hidden when there is nothing to say."""

    def __init__(self, **kw):
        self.pane = pn.widgets.StaticText(
            value="",
            visible=False,
            css_classes=["gan2d-notice", "info"],
            stylesheets=[NOTICE_CSS],
            sizing_mode="stretch_width",
            **kw,
        )
        self._kind: str | None = None

    def show(self, kind: str | None, text: str = "") -> None:
        """Show ``text`` as an alert of ``kind`` ("info", "warning", "danger"), or hide
        the line when ``kind`` is None."""
        self._kind = kind
        if kind is None:
            self.pane.visible = False
            return
        self.pane.param.update(
            value=html.escape(text), css_classes=["gan2d-notice", kind], visible=True
        )

    @property
    def kind(self) -> str | None:
        return self._kind

    @property
    def text(self) -> str:
        return html.unescape(self.pane.value) if self._kind else ""

    def guard(self, callback: Callable) -> Callable:
        """``callback`` that shows its ``ValueError`` as a warning and any other
        failure as an error on this line, instead of raising into Panel."""

        @functools.wraps(callback)
        def guarded(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except ValueError as err:
                self.show("warning", f"Not applied: {err}")
            except Exception as err:
                log.exception("gan2d: a callback failed")
                self.show("danger", f"Something went wrong: {type(err).__name__}: {err}")
            return None

        return guarded


def _button(label: str, width: int, callback: Callable[[], None], **kw) -> pn.widgets.Button:
    button = pn.widgets.Button(label=label, width=width, **kw)
    button.on_click(lambda _event: callback())
    return button


class Transport(pn.viewable.Viewer):
    """Buttons for the actions a tab has; absent actions get no button."""

    playing = param.Boolean(default=False, doc="whether the toggle shows its pause label")

    def __init__(
        self,
        *,
        on_play: Callable[[], None],
        on_pause: Callable[[], None],
        play_label: str = "Play",
        pause_label: str = "Pause",
        on_step: Callable[[], None] | None = None,
        on_step_d: Callable[[], None] | None = None,
        on_step_g: Callable[[], None] | None = None,
        on_reset: Callable[[], None] | None = None,
        speed: pn.widgets.Widget | None = None,
        **params,
    ):
        super().__init__(**params)
        self._labels = (play_label, pause_label)
        self._on_play, self._on_pause = on_play, on_pause
        self.toggle = _button(play_label, 100, self._toggled, color="success")
        self.buttons = [self.toggle]
        for label, width, action in (
            ("Step", 70, on_step),
            ("Step D", 80, on_step_d),
            ("Step G", 80, on_step_g),
        ):
            if action is not None:
                self.buttons.append(_button(label, width, action))
        if on_reset is not None:
            self.buttons.append(_button("↺ Reset", 90, on_reset, color="warning"))
        items = [*self.buttons] + ([speed] if speed is not None else [])
        self.layout = pn.Row(*items, align="center")

    def _toggled(self) -> None:
        if self.playing:
            self._on_pause()
        else:
            self._on_play()

    @param.depends("playing", watch=True)
    def _relabel(self) -> None:
        play, pause = self._labels
        self.toggle.label = pause if self.playing else play
        self.toggle.color = "primary" if self.playing else "success"

    def disable(self, disabled: bool = True) -> None:
        for button in self.buttons:
            button.disabled = disabled

    def __panel__(self):
        return self.layout


def param_controls(obj, parameters: list[str]):
    """A tab's sidebar of controls made from ``obj``'s parameters, every widget as wide
    as the sidebar (Panel's default widths overflow it and clip the select boxes)."""
    return pn.Param(
        obj,
        parameters=parameters,
        show_name=False,
        width=SIDEBAR_WIDTH,
        widgets={name: {"sizing_mode": "stretch_width"} for name in parameters},
    )


def in_session() -> bool:
    """Whether this runs for a served browser session (not a test or a notebook cell
    without a server): periodic callbacks and session hooks need one."""
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None
