"""Follow the teacher: a run shared live under a short code, watched read-only.

The teacher's lab presses "Share live" and gets a code; ``/app?follow=CODE`` opens a
follower: the same plots and settings, read-only, with the teacher's changes as they
are made. The shared run is trained once: each frame it makes is published here, and
every follower's page takes the latest one when it has painted its last (so a follower
costs frame delivery only). A code gives read access to that run and nothing else;
"Make it mine" asks the run for a *copy* of its state. When the teacher's page closes,
the share ends and its followers keep their last frame.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass, field

from gan2d.ui.feed import Feed
from gan2d.ui.plots import LabPlots

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud in a room
CODE_LENGTH = 6
CODE_PATTERN = re.compile(f"^[{ALPHABET}]{{{CODE_LENGTH}}}$")
#: several server processes behind a proxy: each has a letter, and its codes start with
#: it, so that the proxy sends a follow link to the process that runs the shared run
ROUTE_ENV = "GAN2D_ROUTE"
log = logging.getLogger(__name__)


@dataclass
class Share:
    """One shared run: its latest frame, numbered, and what its page shows."""

    code: str
    run: object  # the teacher's LabRun
    settings: object  # the teacher's LabSettings (preset, speed, hidden plots): read only
    # the lesson, its step and the challenge the teacher's page is in (the page sets it)
    guide: tuple = (None, 1, None)
    number: int = 0
    frame: object = None
    ended: bool = False
    _feed: object = field(default=None, repr=False)
    _watchers: list = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def publish(self, frame) -> None:
        """A new frame of the shared run (called by the run's worker); each follower is
        told, and takes it when its page has painted the last one."""
        with self._lock:
            self.number += 1
            self.frame = frame
        self._notify()

    def feed(self):
        """The run's plots as its followers' pages show them (``gan2d.ui.feed``): made
        by the first follower's first frame, on the server's event loop."""
        if self._feed is None:
            self._feed = Feed(LabPlots())
        return self._feed

    def move_to(self, run) -> None:
        """The teacher's page replaced its run (loaded weights): share the new one."""
        self.run.unlisten(self.publish)
        self.run = run
        run.listen(self.publish)

    def end(self) -> None:
        """The run is no longer shared: its followers are told once, keeping their frame."""
        self.ended = True
        self.run.unlisten(self.publish)
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            watchers = list(self._watchers)
        for notify in watchers:
            notify()

    def watch(self, notify) -> None:
        """A follower: ``notify()`` is called (from a worker) on every new frame."""
        with self._lock:
            self._watchers.append(notify)

    def unwatch(self, notify) -> None:
        with self._lock:
            if notify in self._watchers:
                self._watchers.remove(notify)

    @property
    def followers(self) -> int:
        with self._lock:
            return len(self._watchers)

    def latest(self, after: int):
        """(number, frame) of the latest frame if newer than ``after``, else None."""
        with self._lock:
            if self.frame is None or self.number <= after:
                return None
            return self.number, self.frame


class Shares:
    """The live shares of this server process, by code."""

    def __init__(self):
        self._shares: dict[str, Share] = {}
        self._lock = threading.Lock()

    def new(self, run, settings) -> Share:
        with self._lock:
            code = _new_code(self._shares)
            share = Share(code, run, settings)
            self._shares[code] = share
        run.listen(share.publish)
        return share

    def get(self, code: str) -> Share | None:
        """The live share of ``code`` (any case), or None for a code that never existed
        or whose run has ended."""
        with self._lock:
            share = self._shares.get(str(code).strip().upper())
        return None if share is None or share.ended else share

    def end(self, share: Share) -> None:
        """The teacher's page has gone: its code is freed and its followers told."""
        with self._lock:
            self._shares.pop(share.code, None)
        share.end()


def route() -> str:
    """This process's letter (``GAN2D_ROUTE``), or "" when it is the only process."""
    raw = os.environ.get(ROUTE_ENV, "").strip().upper()
    if raw and not (len(raw) == 1 and raw in ALPHABET):
        log.warning("%s=%r is not one letter of %s: ignored", ROUTE_ENV, raw, ALPHABET)
        return ""
    return raw


def _new_code(taken) -> str:
    prefix = route()
    while True:
        code = prefix + "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH - len(prefix)))
        if code not in taken:
            return code


def valid_code(text: str) -> bool:
    return bool(CODE_PATTERN.match(str(text).strip().upper()))


#: the process-wide registry
SHARES = Shares()
