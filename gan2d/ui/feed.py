"""A shared run's plots, patched once per frame and sent as the same bytes to every
follower's page.

Fed the usual way, each follower's page would take every frame into its own plots and
Bokeh would build, serialize and send a patch message per page: most of the server's
work per follower frame, on its one event-loop thread. Instead a shared run keeps one
``LabPlots`` of its own, in a document no page shows (``Feed``). The models a frame
changes (``LabPlots.fed_models``: the sources, ranges, colour scale and chart titles)
carry the same ids there and in every follower's page (``share_ids``), so the patch
Bokeh builds for that document, once per frame, is valid as it is in every follower's
page, and is written to each follower's websocket unchanged (``send``).

While a page follows, the server's copy of its fed models is left as it was; the page
itself holds the feed's state. ``LabPlots.copy_from`` puts the feed's state into the
server's copy (with Bokeh's usual patch to that page): when a page starts following, when
it falls too far behind, and when it stops following (its run's own frames then update
its plots the usual way, against values that match the page again).

A page's own frames go out in one write too (``one_message``): Panel would send each
part of the frame's message (~25) as its own websocket write, a system call each. Both
kinds of patch are built by ``patch_message``: Bokeh's message, made with less work.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import struct
from collections import deque

import numpy as np
import panel as pn
from bokeh.core.serialization import Buffer
from bokeh.document import Document
from bokeh.document.events import DocumentPatchedEvent
from bokeh.layouts import column
from bokeh.protocol.messages.patch_doc import PatchJson, patch_doc
from panel.io.document import _WRITE_BLOCK, _WRITE_MSGS, dispatch_tornado
from panel.io.model import monkeypatch_events

from gan2d.ui.clock import FrameClock, LazyRefSerializer, SyncedModels

log = logging.getLogger(__name__)

ID_PREFIX = "gan2d-feed-"
# patches kept for pages a few frames behind; further back, a page is re-synced
KEPT = 8
# arrays of at most this many numbers travel in a patch as JSON lists, not binary buffers
SHORT_ARRAY = 16
_BUFFER_IDS = itertools.count(1)  # a buffer's id names it within its message only


CLOCK_ID = ID_PREFIX + "clock"


def share_ids(plots, clock=None) -> None:
    """Give the fed models of ``plots`` (not yet in any document) the feed's ids, and
    ``clock``'s page model (a ``FrameClock``'s, made later) its own."""
    for key, (model, _attrs) in plots.fed_models().items():
        model._id = ID_PREFIX + key
    if clock is not None:
        clock.shared_id = CLOCK_ID


class Feed:
    """One shared run's plots, the frame they show, and the last patches they made.

    The feed moves on only when a page that has all its patches asks for a newer frame
    (``Lab._next_frame``): a page behind it is given the feed's own frame and the
    patches it lacks. So the feed makes about one patch per frame of its fastest page,
    and the others catch up with those same patches rather than with every frame the
    run made."""

    def __init__(self, plots):
        share_ids(plots)
        self.plots = plots
        self.doc = Document()
        self.doc.add_root(column(*plots.figures().values()))
        # the frame's step, settings version, readout and number, as a page's clock has them
        self.clock = FrameClock._data_model()
        self.clock._id = CLOCK_ID
        self.doc.add_root(self.clock)
        self.doc.models.flush_synced()  # a patch refers to these models, never defines them
        self._fed = {model.id for model, _attrs in plots.fed_models().values()}
        self._fed.add(CLOCK_ID)
        self.number = 0  # the share's number of the frame the plots show
        self.frame = None
        # (number before, number after, the patch or None when nothing changed)
        self._patches: deque = deque(maxlen=KEPT)
        self._events: list = []
        self.doc.on_change(self._events.append)

    def advance(self, number: int, frame, visible: dict[str, bool], readout) -> None:
        """Take the share's frame ``number`` into the plots and the clock (once: an older
        or the same number does nothing) and keep the patch it made. ``readout()``: the
        frame's readout line (the same on every follower's page)."""
        if number <= self.number:
            return
        self._events.clear()
        self.plots.update(frame, visible)
        # the number last: a page acknowledges it once it has painted the rest
        self.clock.update(step=frame.step, version=frame.version, readout=readout(), frame=number)
        events = [e for e in self._events if getattr(e, "model", None) is not None]
        events = [e for e in events if e.model.id in self._fed]
        self._events.clear()
        patch = None
        if events:
            message = patch_message(events)
            patch = (message, wire_bytes(message))
        self._patches.append((self.number, number, patch))
        self.number, self.frame = number, frame

    def since(self, number: int) -> list | None:
        """The patches that take a page from the feed's frame ``number`` to its latest,
        oldest first, each as (message, its bytes on a websocket); None when they are
        no longer all kept (re-sync the page with ``LabPlots.copy_from``)."""
        if number == self.number:
            return []
        for i, (before, _after, _patch) in enumerate(self._patches):
            if before == number:
                chain = itertools.islice(self._patches, i, None)
                return [patch for _b, _a, patch in chain if patch is not None]
        return None


class PatchSerializer(LazyRefSerializer):
    """Bokeh's serializer for a patch of one document, with savings on a frame's patch
    (the event loop makes one per frame per page, ~125 a second for a class):

    - Whether the page has a model is asked of the document when the patch meets the
      model (``SyncedModels``): Bokeh's ``PATCH-DOC`` first makes a set of the
      document's models (~600 on a lab's page) for each message.
    - A short array (a curve's first points) goes as a JSON list. As a binary buffer it
      costs an id, a header and two websocket frames of its own: a new run's first
      frame had 35 buffers, 24 of them a single number.
    - A buffer's id is a plain count (Bokeh's ``make_id`` reads its settings, from the
      environment, for each)."""

    def __init__(self, doc: Document):
        super().__init__()
        self._known = SyncedModels(doc.models)  # what ``LazyRefSerializer`` asks ``in``

    def _encode_ndarray(self, obj: np.ndarray):
        if obj.ndim == 1 and obj.size <= SHORT_ARRAY and obj.dtype.kind in "fiu":
            return self._encode_list(obj.tolist())
        return super()._encode_ndarray(obj)

    def _encode_bytes(self, obj):
        buffer = Buffer(f"b{next(_BUFFER_IDS)}", obj)
        self._buffers.append(buffer)
        return {"type": "bytes", "data": buffer}


def patch_message(events: list):
    """The ``PATCH-DOC`` message of ``events`` (of one document), as Bokeh's
    ``Protocol.create`` makes it, with ``PatchSerializer``."""
    doc = events[0].document
    if any(event.document is not doc for event in events):
        raise ValueError("a patch message takes the events of one document")
    serializer = PatchSerializer(doc)
    content = PatchJson(events=serializer.encode(events))
    doc.models.flush_synced(lambda model: not serializer.has_ref(model))
    message = patch_doc(patch_doc.create_header(), {}, content)
    message.add_buffers(*serializer.buffers)
    return message


def wire_bytes(message) -> bytes:
    """``message`` as a server writes it on a websocket (no compression): its header,
    metadata and content as text frames, then each buffer's header and bytes; the same
    bytes for every page, so they are made once."""
    parts = [(message.header_json.encode(), False), (message.metadata_json.encode(), False)]
    parts.append((message.content_json.encode(), False))
    for buffer in message.buffers:
        parts += [(json.dumps(buffer.ref).encode(), False), (buffer.to_bytes(), True)]
    return b"".join(_frame(data, binary) for data, binary in parts)


def _frame(data: bytes, binary: bool) -> bytes:
    """One final, unmasked websocket frame (RFC 6455, 5.2)."""
    first = 0x80 | (0x2 if binary else 0x1)
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + data


def _connections(doc) -> list | None:
    """The connections of ``doc``'s session, if called in a callback that holds the
    session's lock (where Bokeh and Panel write a page's patches); else None."""
    session = getattr(getattr(doc, "session_context", None), "_session", None)
    if getattr(session, "_pending_writes", None) is None:
        return None
    return list(session._subscribed_connections)


def busy(doc) -> bool:
    """Whether one of the page's connections is in the middle of writing a message
    (Bokeh writes one in several pieces) or Panel has patches of its own waiting to be
    written to the page: ``send`` must wait, as Panel does."""
    if doc in _WRITE_MSGS or doc in _WRITE_BLOCK:
        return True
    for connection in _connections(doc) or ():
        lock = getattr(connection._socket, "write_lock", None)
        if lock is not None and lock._block._value == 0:  # as Panel checks
            return True
    return False


def send(doc, messages) -> bool:
    """Write ``messages`` now to every connection of ``doc``'s page, as Panel writes a
    callback's patches: so they reach the page before the patches the callback makes
    after (the frame's readout and number, which the page acknowledges). Call it only
    when not ``busy``. False (nothing written) outside a session's callback: then feed
    the page the usual way."""
    connections = _connections(doc)
    if connections is None:
        return False
    blob = None
    for connection in connections:
        ws = getattr(connection._socket, "ws_connection", None)
        if ws is None or ws.is_closing():
            continue
        if getattr(ws, "_compressor", None) is None and not ws.mask_outgoing:
            blob = blob if blob is not None else b"".join(wire for _m, wire in messages)
            future = ws.stream.write(blob)  # one write for the lot
        else:  # a compressed connection: each page's own bytes, through tornado
            futures = [f for m, _w in messages for f in dispatch_tornado(connection, msg=m)]
            future = futures[-1] if futures else None
        if future is not None:
            future.add_done_callback(_written)
    return True


@contextlib.contextmanager
def one_message(doc):
    """Hold the changes the body makes to ``doc``'s models and write them to its page at
    the end as one patch message, in one write (``send``). Panel's ``hold`` sends the same
    message as a websocket frame per part (~25 for a frame of the lab), each its own
    system call: with 30 students training, 8 to 23% of the event loop's time per frame
    (``benchmarks/classroom.py``, ``loop_ms_per_frame``). Where
    ``send`` cannot be used (outside a session's callback, a busy connection, a hold
    already open) this is Panel's ``hold``."""
    if (
        doc is None
        or doc.callbacks.hold_value is not None
        or _connections(doc) is None
        or busy(doc)
    ):
        with pn.io.hold(doc):
            yield
        return
    doc.hold("combine")
    try:
        yield
    finally:
        held = doc.callbacks._held_events
        patches = [e for e in held if isinstance(e, DocumentPatchedEvent)]
        doc.callbacks._held_events = [e for e in held if not isinstance(e, DocumentPatchedEvent)]
        try:
            if patches:
                monkeypatch_events(patches)  # Panel's fixes to the events it sends
                message = patch_message(patches)
                send(doc, [(message, wire_bytes(message))])
        finally:
            doc.unhold()  # the rest (not patches of the page) as Bokeh does


def _written(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("a follower's page closed while its frame was written")
