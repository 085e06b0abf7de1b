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
"""

from __future__ import annotations

import itertools
import logging
from collections import deque

from bokeh.document import Document
from bokeh.layouts import column
from bokeh.protocol import Protocol
from panel.io.document import dispatch_tornado

log = logging.getLogger(__name__)

PROTOCOL = Protocol()
ID_PREFIX = "gan2d-feed-"
# patches kept for pages a few frames behind; further back, a page is re-synced
KEPT = 8


def share_ids(plots) -> None:
    """Give the fed models of ``plots`` (not yet in any document) the feed's ids."""
    for key, (model, _attrs) in plots.fed_models().items():
        model._id = ID_PREFIX + key


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
        self.doc.models.flush_synced()  # a patch refers to these models, never defines them
        self._fed = {model.id for model, _attrs in plots.fed_models().values()}
        self.number = 0  # the share's number of the frame the plots show
        self.frame = None
        # (number before, number after, the patch or None when nothing changed)
        self._patches: deque = deque(maxlen=KEPT)
        self._events: list = []
        self.doc.on_change(self._events.append)

    def advance(self, number: int, frame, visible: dict[str, bool]) -> None:
        """Take the share's frame ``number`` into the plots (once: an older or the same
        number does nothing) and keep the patch it made."""
        if number <= self.number:
            return
        self._events.clear()
        self.plots.update(frame, visible)
        events = [e for e in self._events if getattr(e, "model", None) is not None]
        events = [e for e in events if e.model.id in self._fed]
        self._events.clear()
        message = PROTOCOL.create("PATCH-DOC", events) if events else None
        self._patches.append((self.number, number, message))
        self.number, self.frame = number, frame

    def since(self, number: int) -> list | None:
        """The patches that take a page from the feed's frame ``number`` to its latest,
        oldest first; None when they are no longer all kept (re-sync the page with
        ``LabPlots.copy_from``)."""
        if number == self.number:
            return []
        for i, (before, _after, _message) in enumerate(self._patches):
            if before == number:
                chain = itertools.islice(self._patches, i, None)
                return [message for _b, _a, message in chain if message is not None]
        return None


def send(doc, messages) -> bool:
    """Write ``messages`` now to every connection of ``doc``'s session, as Panel writes
    a callback's patches: so they reach the page before the patches the callback makes
    after (the frame's readout and number, which the page acknowledges). False (nothing
    written) outside a callback holding the session's lock, without a session, or while
    one of its connections is in the middle of another message: then feed the page the
    usual way."""
    session = getattr(getattr(doc, "session_context", None), "_session", None)
    if getattr(session, "_pending_writes", None) is None:
        return False
    connections = list(session._subscribed_connections)
    for connection in connections:
        lock = getattr(connection._socket, "write_lock", None)
        if lock is not None and lock._block._value == 0:  # as Panel checks
            return False
    for connection in connections:
        for message in messages:
            for future in dispatch_tornado(connection, msg=message):
                future.add_done_callback(_written)
    return True


def _written(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("a follower's page closed while its frame was written")
