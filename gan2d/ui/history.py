"""Replay: the frames a lab has shown, kept so the run can be scrubbed back through.

``FrameHistory`` keeps a bounded, evenly thinned record of one run's frames: at most
``MAX_FRAMES`` frames and ``MAX_BYTES`` of arrays per session. When either bound is
reached every other kept frame is dropped and from then on only every second frame is
kept (then every fourth, ...), so the record always spans the whole run at an even
spacing; the newest frame is always kept too, so the record ends where the run is. A
new run (a restart) starts a new record. The kept frames are what the
timeline scrubs through and what the GIF export animates.

``Timeline`` is the slider under the plots: usable while the run is paused; dragging it
shows the kept frame of that moment; "Live" goes back to the run as it is now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import panel as pn
import param

from gan2d.ui.session import Frame

MAX_FRAMES = 240
MAX_BYTES = 12 * 2**20  # per session: 30 students keep at most ~360 MB between them
# what a replayed frame draws (the curves are marked, not redrawn)
KEPT_KEYS = (
    "fake",
    "real",
    "critic",
    "arrow_xy",
    "arrow_uv",
    "fake_uv",
    "manifold",
    "step",
    "sliced_w1",
    "live_modes",
    "live_hq",
    "live_mode_counts",
)


class FrameHistory:
    """The kept frames of the current run, oldest first (see the module docstring)."""

    def __init__(self, max_frames: int = MAX_FRAMES, max_bytes: int = MAX_BYTES):
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.clear()

    def clear(self) -> None:
        self.frames: list[Frame] = []
        self.run_id: int | None = None
        self.stride = 1  # keep every stride-th frame offered
        self._offered = 0
        self._tail = False  # the last kept frame is the newest, off the stride
        self._real = None  # the real sample changes only with the settings: kept once
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.frames)

    def add(self, frame: Frame) -> None:
        """Offer a frame the page has shown; kept if it falls on the current stride."""
        if frame.run_id != self.run_id:
            self.clear()
            self.run_id = frame.run_id
        if self.frames and (self._tail or frame.step <= self.frames[-1].step):
            # the newest-only frame gives way; so does the same step seen again (new
            # settings while paused: the newer view wins)
            self.nbytes -= _frame_bytes(self.frames.pop())
        self._offered += 1
        self._tail = bool((self._offered - 1) % self.stride)
        kept = self._slim(frame)
        self.frames.append(kept)
        self.nbytes += _frame_bytes(kept)
        while len(self.frames) > self.max_frames or (
            self.nbytes > self.max_bytes and len(self.frames) > 2
        ):
            self._thin()

    def _slim(self, frame: Frame) -> Frame:
        snap = {}
        for key in KEPT_KEYS:
            if key in frame.snap:
                value = np.asarray(frame.snap[key])
                snap[key] = value.astype(np.float32) if value.dtype == np.float64 else value
        if self._real is not None and np.array_equal(self._real, snap["real"]):
            snap["real"] = self._real  # shared, not copied
        else:
            self._real = snap["real"] = np.array(snap["real"], copy=True)
        return dataclasses.replace(frame, snap=snap, curves={}, w1=None, drawn=None)

    def _thin(self) -> None:
        """Drop every other kept frame (the newest always stays); keep half as often."""
        last = self.frames[-1]
        on_stride = self.frames[:-1] if self._tail else self.frames
        frames = on_stride[::2]
        self._tail = frames[-1] is not last
        if self._tail:
            frames.append(last)
        self.frames = frames
        self.stride *= 2
        self.nbytes = sum(_frame_bytes(f) for f in self.frames)

    def steps(self) -> list[int]:
        return [f.step for f in self.frames]


def _frame_bytes(frame: Frame) -> int:
    # the shared real sample is counted in each frame: an upper bound, never an under-count
    return sum(np.asarray(v).nbytes for v in frame.snap.values()) + sum(
        np.asarray(v).nbytes for v in frame.hist.values()
    )


class Timeline(pn.viewable.Viewer):
    """A slider over the kept frames and a Live button. ``on_show(frame)`` draws a kept
    frame; ``on_live()`` returns to the run. Usable only while the run is paused."""

    replaying = param.Boolean(default=False, doc="whether a kept frame is shown")

    def __init__(
        self,
        history: FrameHistory,
        on_show: Callable[[Frame], None],
        on_live: Callable[[], None],
        **params,
    ):
        super().__init__(**params)
        self.history = history
        self._on_show = on_show
        self._on_live = on_live
        self.slider = pn.widgets.IntSlider(
            label="Replay",
            start=0,
            end=1,
            value=1,
            disabled=True,
            sizing_mode="stretch_width",
            margin=(0, 10),
        )
        self.slider.param.watch(self._dragged, "value")
        self.live_button = pn.widgets.Button(label="Live", width=80, disabled=True, align="center")
        self.live_button.on_click(lambda _e: self.go_live())
        self.label = pn.widgets.StaticText(value="", align="center", width=260)
        self._layout = pn.Row(
            self.slider, self.label, self.live_button, sizing_mode="stretch_width"
        )
        self._syncing = False
        self.shown: Frame | None = None  # the kept frame on the screen while replaying

    def __panel__(self):
        return self._layout

    def sync(self, paused: bool) -> None:
        """Follow the record (after each frame, and when play starts or stops)."""
        n = len(self.history)
        usable = paused and n > 1
        self._syncing = True
        try:
            if not self.replaying:
                self.slider.param.update(end=max(n - 1, 1), value=max(n - 1, 0))
            else:
                self.slider.end = max(n - 1, 1)
            self.slider.disabled = not usable
        finally:
            self._syncing = False
        if not self.replaying:
            hint = "pause to scrub back" if n > 1 and not paused else ""
            if n > 1 and paused:
                hint = f"{n} moments kept: drag to go back"
            self.label.value = hint
        if not paused and self.replaying:
            self.go_live()

    def _dragged(self, event) -> None:
        if self._syncing or not self.history.frames:
            return
        index = min(max(int(event.new), 0), len(self.history) - 1)
        frame = self.history.frames[index]
        if index == len(self.history) - 1 and not self.replaying:
            return
        self.replaying = True
        self.shown = frame
        self.live_button.disabled = False
        self.label.value = f"replaying step {frame.step:,} of {self.history.frames[-1].step:,}"
        self._on_show(frame)

    def go_live(self) -> None:
        if not self.replaying:
            return
        self.replaying = False
        self.shown = None
        self.live_button.disabled = True
        self._syncing = True
        try:
            self.slider.value = max(len(self.history) - 1, 0)
        finally:
            self._syncing = False
        self.label.value = ""
        self._on_live()
