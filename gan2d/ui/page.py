"""The whole page of a session, and the server's start-up hook.

``app/main.py`` calls ``build_page()``; ``app/app_hooks.py`` hands Bokeh
``on_server_loaded``, which compiles the default preset once per server process, in
the background, so the first visitor's page does not wait; the Compare tab's default
runs compile once the first page shows its first frame.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import panel as pn

from gan2d.ui import settings as ls
from gan2d.ui import trainer
from gan2d.ui.clock import refer_lazily, remember_callback_arity
from gan2d.ui.lab import Lab
from gan2d.ui.scheduler import scheduler
from gan2d.ui.session import warm_lab

log = logging.getLogger("gan2d.app")


class _Once:
    """Run a function once per process, in a background thread; later calls return that
    thread."""

    def __init__(self, name: str, work):
        self.name, self.work = name, work
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def __call__(self) -> threading.Thread:
        with self._lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self.thread.start()
            return self.thread

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            self.work()
            log.info("gan2d: %s done in %.1f s", self.name, time.perf_counter() - t0)
        except Exception:
            log.exception("gan2d: %s failed", self.name)


def _warm_lab() -> None:
    warm_lab(ls.preset_config(ls.DEFAULT_PRESET))


def _warm_compare() -> None:
    from gan2d.ui import compare

    compare.warm_default()


#: the lab's default preset, compiled when the server starts, so that the first
#: visitor's page does not wait for it
warm_default = _Once("gan2d-warm-lab", _warm_lab)
#: the Compare tab's default runs, compiled once a first page shows its first frame
#: (not at start: loading programs holds Python's lock, and the first page needs it)
warm_compare = _Once("gan2d-warm-compare", _warm_compare)


def _quiet_closed_sockets(loop, context):
    """A frame written while its tab closes fails with WebSocketClosedError in a task
    nobody awaits; asyncio would print a traceback for it (holoviz/panel#3113). Keep
    that one to a line and leave every other error to the default handler."""
    error = context.get("exception")
    if type(error).__name__ in ("WebSocketClosedError", "StreamClosedError"):
        log.info("gan2d: dropped a frame for a closed tab")
        return
    loop.default_exception_handler(context)


def on_server_loaded(server_context) -> None:
    """Bokeh's hook, run once when ``panel serve`` starts."""
    asyncio.get_event_loop().set_exception_handler(_quiet_closed_sockets)
    trainer.serve(scheduler())
    warm_default()


def decode_session_args(args: dict[str, list[bytes]]) -> dict[str, str]:
    """Bokeh's request arguments (lists of bytes) -> {key: last value as str}."""
    out = {}
    for key, values in args.items():
        if not values:
            continue
        raw = values[-1]
        out[key] = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return out


def _build(title: str, make) -> pn.viewable.Viewable:
    """A tab's view, or, if building it fails, a notice that says so (the others still
    work)."""
    try:
        return make()
    except Exception as err:
        log.exception("gan2d: the %s tab could not be built", title)
        text = f"The {title} tab could not be built: {type(err).__name__}: {err}"
        return pn.pane.Alert(text, alert_type="danger")


class PageTabs:
    """The page's tabs: the Lab, then tabs that are built the first time they are
    shown. Most visitors never open Compare or Sweep, and building them with every page
    was half of a page's build time, which thirty students opening a link at once pay
    together."""

    def __init__(self, lab_view: pn.viewable.Viewable, makers: dict):
        self._makers = makers
        self._slots = {t: pn.Column(sizing_mode="stretch_width") for t in makers}
        # Dynamic: a tab's Bokeh models are sent when it is first shown. A hidden tab's
        # models are detached, and Panel updates a detached Markdown pane with links to
        # its CDN stylesheets, which the browser then fetches from the internet: text
        # that changes while a tab may be hidden (status lines, notices) is therefore a
        # widget (``gan2d.ui.notice``), never a Markdown pane.
        self.tabs = pn.Tabs(
            ("Lab", lab_view),
            *self._slots.items(),
            dynamic=True,
            sizing_mode="stretch_width",
        )
        self.tabs.param.watch(lambda e: self.view(self.tabs._names[e.new]), "active")

    def view(self, title: str) -> pn.viewable.Viewable:
        """The view of tab ``title``, built now if it has not been."""
        slot = self._slots.get(title)
        if slot is None:
            return self.tabs[list(self.tabs._names).index(title)]
        if not slot.objects:
            slot.objects = [_build(title, self._makers[title])]
        return slot.objects[0]

    def select(self, where: str) -> None:
        """Show tab ``where``: a title, or "Title/Inner" for a tab inside it."""
        top, _, inner = where.partition("/")
        names = list(self.tabs._names)
        if top not in names:
            return
        self.tabs.active = names.index(top)
        view = self.view(top)
        if inner and isinstance(view, pn.Tabs) and inner in view._names:
            view.active = list(view._names).index(inner)


def build_page() -> pn.viewable.Viewable:
    """The whole page for one session: the lab and the Theory, Compare and Sweep tabs,
    beside the lesson or challenge column (hidden when there is none)."""
    from gan2d.ui.compare import compare_view
    from gan2d.ui.sweep import sweep_view
    from gan2d.ui.theory import theory_view

    remember_callback_arity()
    refer_lazily()
    lab = Lab(query=decode_session_args(pn.state.session_args))
    lab.on_first_frame = warm_compare
    lab.start()
    tabs = PageTabs(
        lab.layout, {"Theory": theory_view, "Compare": compare_view, "Sweep": sweep_view}
    )
    # the lesson or challenge column stays beside whichever tab a step opens
    lab.guide.tabs = tabs
    lab.guide.show()
    return pn.Row(lab.guide.panel, tabs.tabs, sizing_mode="stretch_width")
