"""The frame clock: the page's readout line and its acknowledgement of each frame.

The server paces a lab by its page: it sends the next frame only after the page says
it has painted the last one. That message, and the readout line it updates in the same
animation frame, live in this small custom component.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import weakref

import panel as pn
import param
from bokeh.core.serialization import Deserializer, Serializer
from bokeh.io import doc as bokeh_doc
from bokeh.model import Model
from bokeh.util import callback_manager
from panel.custom import JSComponent
from panel.io.state import set_curdoc


class FrameClock(JSComponent):
    """The readout line (step, speed, modes...) and the frame acknowledgement.

    The server sets ``frame`` (with the ``step``, settings ``version`` and ``readout``
    it shows) after the frame's data; the page waits for the next paint, then sends the
    frame number back as a message (see ``on_msg``), and ``{"visible": bool}`` when its
    browser tab is hidden or shown: a message skips the parameter
    machinery (and Panel's 50 ms batching delay) that a property change goes through.
    ``window.gan2d`` keeps paint times for tests and the frame-rate benchmark."""

    frame = param.Integer(default=0)
    step = param.Integer(default=0)
    version = param.Integer(default=0)
    readout = param.String(default="")

    #: an id for the page model's values, the same in every page that has it (a
    #: follower's: see ``gan2d.ui.feed``); set before the page is built
    shared_id: str | None = None

    def _get_model(self, doc, root=None, parent=None, comm=None):
        model = super()._get_model(doc, root, parent, comm)
        if self.shared_id is not None and model.data.document is None:
            model.data._id = self.shared_id
        return model

    def show(self, **values) -> None:
        """Set a frame's values (``frame`` last) on the component and straight on its
        page's model: Panel's way from a parameter to the page (watchers, its batching,
        checks for each value) was a third of the server's work for a follower's frame.
        The component's parameters keep the same values."""
        with param.parameterized.discard_events(self):
            for name, value in values.items():  # (``param.update`` reads every value first)
                setattr(self, name, value)
        for ref, (model, _parent) in list(self._models.items()):
            # Panel listens to the page model's values to hear the page's own changes;
            # marked as ours (as Panel marks its own updates), they are not taken back
            # into the parameters, which already have them (work for nothing on every
            # frame of every page); the marks left unused (unchanged values) go after
            before = self._changing.get(ref, [])
            self._changing[ref] = before + list(values)
            try:
                model.data.update(**values)
            finally:
                if before:
                    self._changing[ref] = before
                else:
                    self._changing.pop(ref, None)

    def _process_bokeh_event(self, doc, event) -> None:
        # Panel marks the whole server busy around every event from a page (for loading
        # indicators; this page has none) by rewriting a list shared by all sessions.
        # A class acknowledges hundreds of frames a second: that bookkeeping was an
        # eighth of the event loop's time. The event is handled as Panel handles it.
        with set_curdoc(doc):
            self._process_event(event)

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
      // a readout that changes with no frame (the tab hidden, say) shows at once
      model.on("readout", () => {
        if (el.innerHTML !== model.readout) el.innerHTML = model.readout;
      });
      // a hidden browser tab stops its run (and a shown one starts it again)
      const visibility = () =>
        model.send_msg({ visible: document.visibilityState === "visible" });
      document.addEventListener("visibilitychange", visibility);
      if (document.visibilityState !== "visible") visibility();
      return el;
    }
    """


def quiet_periodic(callback, period: int):
    """``pn.state.add_periodic_callback`` without Panel's busy bookkeeping around each
    call (see ``FrameClock._process_bokeh_event``): a page's housekeeping tick."""
    cb = pn.state.add_periodic_callback(callback, period=period, start=False)
    cb._background = True  # Panel's own switch for callbacks that do not make it busy
    cb.start()
    return cb


def remember_callback_arity() -> None:
    """Bokeh inspects an event callback's signature (``inspect.signature``) every time
    it calls it, to know whether to pass the event: on every frame acknowledgement of
    every page, a tenth of the event loop's time with a class connected. A callback's
    signature never changes, so the answer is kept for as long as the callback lives.
    Does nothing if this Bokeh has no such function."""
    nargs = getattr(callback_manager, "_nargs", None)
    if nargs is None or getattr(nargs, "gan2d_remembers", False):
        return
    known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def remembered(fn) -> int:
        try:
            return known[fn]
        except (KeyError, TypeError):
            pass
        n = nargs(fn)
        with contextlib.suppress(TypeError):  # not weakly referable: asked again next time
            known[fn] = n
        return n

    remembered.gan2d_remembers = True
    callback_manager._nargs = remembered


class LazyRefSerializer(Serializer):
    """Bokeh's serializer for a patch message, given the document's models without
    making every one's reference up front.

    Bokeh builds each patch message with a serializer that knows which models the page
    already has, so that a patch refers to them instead of defining them again; it made
    a reference object for every model of the document (600 on a lab's page) for every
    message, when a frame's patch refers to a handful. With a class connected that was
    a third of the event loop's time. Here a model's reference is made the first time
    the message needs it; what the serializer answers is the same."""

    def __init__(self, *, references=frozenset(), deferred=True, check_circular=False):
        super().__init__(deferred=deferred, check_circular=check_circular)
        self._known = references if isinstance(references, set | frozenset) else set(references)

    def has_ref(self, obj) -> bool:
        return id(obj) in self._references or (isinstance(obj, Model) and obj in self._known)

    def get_ref(self, obj):
        ref = self._references.get(id(obj))
        if ref is None and isinstance(obj, Model) and obj in self._known:
            ref = self._references[id(obj)] = obj.ref
        return ref


class SyncedModels:
    """The models a document's page has (Bokeh's ``synced_references``: the document's
    models less those new since the page last had it), asked about one model at a time
    rather than made into a set of all ~600 for each message."""

    def __init__(self, models):
        self._models = models  # the document's ``DocumentModelManager``

    def __contains__(self, model) -> bool:
        models = self._models
        return models.get_by_id(model.id) is model and model not in models._new_models


class IndexedDeserializer(Deserializer):
    """Bokeh's deserializer for a patch from a page, looking the page's models up in
    the document's own index by id instead of indexing them all again.

    Bokeh applies each patch from a page (every frame's acknowledgement) with a new
    deserializer given a list of all the document's models, which it indexes by id: a
    fifth of the event loop's time with a class following a shared run. The list is
    made from the document's index right before; when it is that document's (the one
    Bokeh applies the patch to), the index itself is used, read only (models the patch
    defines go in a map of their own)."""

    def __init__(self, references=None, *, setter=None):
        index = _document_index(references)
        super().__init__(None if index is not None else references, setter=setter)
        if index is not None:
            self._references = collections.ChainMap({}, index)


def _document_index(references) -> dict | None:
    """The id index of the document a patch is being applied to (Bokeh makes it the
    current document meanwhile), if ``references`` lists exactly its models."""
    if not isinstance(references, list) or not references or not bokeh_doc._PATCHED_CURDOCS:
        return None
    doc = bokeh_doc._PATCHED_CURDOCS[-1]()
    index = getattr(getattr(doc, "models", None), "_models", None)
    if not isinstance(index, dict) or len(index) != len(references):
        return None
    first, last = references[0], references[-1]
    if index.get(first.id) is not first or index.get(last.id) is not last:
        return None
    return index


def refer_lazily() -> None:
    """Bokeh's patch messages use ``LazyRefSerializer`` and ``IndexedDeserializer``."""
    # the module: its package's name ``patch_doc`` is the message class
    importlib.import_module("bokeh.protocol.messages.patch_doc").Serializer = LazyRefSerializer
    importlib.import_module("bokeh.document.document").Deserializer = IndexedDeserializer
