"""A lab session's run: what the scheduler trains for one page, paced by the page.

``LabRun`` is a scheduler ``Job``. The page's event loop asks for things (a new
config, play, pause, a single step, a reset); a worker of the shared pool does them
between chunks, one small piece per ``work()``: take a snapshot into the one-frame
slot, or train a frame's worth of steps; a new config (the core's ``transition`` says
what it means) is applied in the same turn as the piece it leads to.

The run works one frame ahead: while the page paints frame N, frame N+1 waits in the
slot and the steps of N+2 are trained; the snapshot of N+2 is taken as soon as the page
collects N+1. The page collects a frame only after it has painted the previous one, so
a slow browser gets fewer frames, never a backlog. A paused run, or one waiting for its
page, is not due and costs no compute.

"Steps per frame" means what it says, except on a busy server: there a frame trains
only the steps that fit the run's share of a frame period at ``limits.frame_rate()``
frames a second (``frame_budget``, ``frame_steps``), so that a class keeps its pictures
moving, but never for less time than the frame's snapshot takes: more frames cost the
run some of its steps per second, never more than half of its time. A run is the same
however its steps are cut into frames (``gan2d.core.train``), so this changes no result.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from gan2d.core.config import Config, is_static
from gan2d.core.train import DIAGNOSTICS
from gan2d.ui.limits import frame_rate, max_steps_per_s
from gan2d.ui.scheduler import PageJob, Scheduler
from gan2d.ui.trainer import (
    CHUNK_SIZES,
    RemoteCore,
    RunClosed,
    RunCore,
    Trained,
    trainer,
)

log = logging.getLogger("gan2d.app")

W1_EVERY_S = 1.0  # the exact W1 (``trainer.W1_POINTS``) about once a second
# ...and at most once in this many frames: its optimal assignment costs about as much
# as a frame's training, and on a busy server (a class) frames are far apart
W1_EVERY_FRAMES = 10
# ...and the runs of a busy server together make about this many a second at most
W1_PER_S = 3.0
KEEP_FRAMES_FLOWING_S = 0.25  # see LabRun.set_config
# Runs are numbered across the process: a page whose run is replaced (Make it mine,
# loaded weights) sees a new number, so its curves and replay record start over.
_RUN_IDS = itertools.count(1)


def chunk_plan(steps: int) -> list[int]:
    """Steps -> chunk sizes to run (only sizes in CHUNK_SIZES compile): as many of the
    large size as fit, then single steps."""
    big, one = CHUNK_SIZES
    return [big] * (steps // big) + [one] * (steps % big)


def frame_steps(speed: int, budget_s: float | None, chunk_s: dict[int, float]) -> int:
    """The steps the next frame trains: ``speed``; or, given a ``budget_s`` (the seconds
    of training a frame may take on a busy server), the most steps up to ``speed`` whose
    chunks fit it, costed by the seconds each chunk size took lately (``chunk_s``; a
    size not measured yet is guessed from the other), and at least one."""
    if budget_s is None or speed <= 1 or not chunk_s:
        return speed
    big, one = CHUNK_SIZES
    c_big = chunk_s.get(big, chunk_s.get(one, 0.0) * big)
    c_one = chunk_s.get(one, chunk_s.get(big, 0.0) / big)
    for steps in range(speed, 1, -1):
        if (steps // big) * c_big + (steps % big) * c_one <= budget_s:
            return steps
    return 1


def frame_budget(workers: int, runs: int, rate: float | None, snap_s: float) -> float | None:
    """Seconds of training a frame may take for a run to keep ``rate`` frames a second
    while ``runs`` share ``workers`` (None: a run alone, or no rate): its share of the
    workers' time over a frame period, less what its snapshot takes (``snap_s``); but
    never less than the snapshot, so that making frames does not take more of a busy
    run's time than training does."""
    if rate is None or runs <= 1:
        return None
    return max(workers / (runs * rate) - snap_s, snap_s)


def w1_every_s(runs: int) -> float:
    """Seconds between a run's exact W1s while ``runs`` train on the server: about one a
    second, but no more than ``W1_PER_S`` a second for all of them together (one costs
    about as much as a frame's training: at 30 runs, one each every 10 s)."""
    return max(W1_EVERY_S, runs / W1_PER_S)


def _smoothed(old: float | None, new: float, weight: float = 0.3) -> float:
    return new if old is None else old + weight * (new - old)


@dataclasses.dataclass
class Frame:
    """What the page draws: one snapshot plus the curve points since the last frame."""

    step: int
    version: int  # the settings version the run was using for the steps shown
    run_id: int  # changes when the run restarts (curves start over)
    scale_id: int  # changes when the critic's values may mean another thing (colour scale)
    config: Config
    extent: float
    snap: dict[str, np.ndarray]
    curves: dict[str, float]  # means over the steps since the previous frame
    hist: dict[str, np.ndarray]
    w1: float | None
    steps_per_s: float
    # steps a frame trains now: the page's speed, or fewer on a busy server (None: paused)
    frame_steps: int | None = None
    # the arrays its plots draw (``gan2d.ui.plots.drawing``), made with the frame
    drawn: dict | None = None


def what_changed(old: Config, new: Config) -> str:
    """The static fields that differ, as ``name=value`` (for the page's notice)."""
    names = [
        f"{f.name}={getattr(new, f.name)}"
        for f in dataclasses.fields(Config)
        if is_static(f.name) and getattr(old, f.name) != getattr(new, f.name)
    ]
    return ", ".join(names) or "settings changed"


def warm_lab(config: Config) -> None:
    """Compile what a lab of ``config`` needs, where its runs train (``trainer().warm``)."""
    trainer().warm(config)


@dataclasses.dataclass
class _Curves:
    """Sums of the diagnostics since the last frame, and the training rate."""

    sums: dict[str, float] = dataclasses.field(default_factory=dict)
    count: int = 0
    rate_t: float = dataclasses.field(default_factory=time.perf_counter)
    rate_steps: int = 0
    steps_per_s: float = 0.0

    def add(self, sums: dict[str, float], n: int) -> None:
        """Add a chunk of ``n`` steps whose diagnostics sum to ``sums``."""
        for key in DIAGNOSTICS:
            self.sums[key] = self.sums.get(key, 0.0) + sums[key]
        self.count += n
        self.rate_steps += n

    def take(self) -> dict[str, float]:
        """Means since the last call, and the rate, updated every half second."""
        means = {k: v / self.count for k, v in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        now = time.perf_counter()
        if now - self.rate_t > 0.5:
            self.steps_per_s = self.rate_steps / (now - self.rate_t)
            self.rate_t, self.rate_steps = now, 0
        return means


class LabRun(PageJob):
    """One page's run. Control methods are called from the page's event loop; the
    scheduler's workers call ``due`` and ``work``."""

    name = "lab"

    def __init__(
        self,
        config: Config,
        speed: int,
        on_frame: Callable[[], None] | None = None,
        pool: Scheduler | None = None,
        start: tuple | None = None,
        start_notice: str = "This lab is yours now, from step {step:,}.",
        core: RunCore | RemoteCore | None = None,
    ):
        """``on_frame()`` is called from a worker each time a frame is ready; ``start``
        is a (Runs, state) to continue from (another run's copy, a weights file) instead
        of the seed, and ``start_notice`` what the page says then. The networks train
        in ``core``; by default a new one from the server's trainer (``trainer()``)."""
        super().__init__(pool)
        self._pending: Config | None = config
        self._restart = True
        self._start = start
        self._start_notice = start_notice
        self._listeners: list[Callable[[Frame], None]] = []
        self._state_requests: list[Callable] = []
        self._speed = speed
        self._queued: list[str] = []
        self._frame: Frame | None = None
        self._taken_at = 0.0
        self._wanted = False  # a follower has shown the last frame (see want_frame)
        self._on_frame = on_frame
        self._messages: dict[str, tuple[str, str] | None] = {}
        self.version = 0
        self.diverged: str | None = None
        self.error: str | None = None
        # the worker's own state: only work() touches it
        self._core = core or trainer().core()  # the networks and their programs
        self._config: Config | None = None  # the config the state trains with (None: no state yet)
        self._extent = 1.0
        self._run_id = self._scale_id = 0
        self._state_version = 0
        self._dirty = False  # the state has steps no frame has shown yet
        self._dropped = False  # a change has dropped such steps since the last frame
        self._curves = _Curves()
        self._last_w1_t = 0.0
        self._frames_since_w1 = W1_EVERY_FRAMES  # the first frame has one
        self._visible = True
        self._steps_per_s_cap = max_steps_per_s()
        self._not_before = 0.0  # with a ceiling: when the next chunk may start
        self._frame_rate = frame_rate()  # kept on a busy server (None: speed steps always)
        self._chunk_s: dict[int, float] = {}  # seconds a chunk of each size took lately
        self._snap_s: float | None = None  # seconds a frame's snapshot and drawing took lately
        self._frame_steps = speed  # steps the last frame's training made
        self._sharing = 1  # runs training on the server lately, this one included
        self._stop_at: int | None = None  # play pauses at this step (a challenge's budget)
        self._step = 0  # the state's step (the worker's count)
        self._paused = False  # paused since the last frame, which showed it playing
        self._join()

    # ------------------------------------------------------------------ controls
    def set_config(self, config: Config, restart: bool = False) -> int:
        """Ask for ``config``; returns its version (frames carry the version they show)."""
        with self._lock:
            self.version += 1
            self._pending = config
            self._restart = self._restart or restart
            # A frame waiting in the slot shows the old settings: drop it, so the next
            # frame the page gets shows the new ones. Not when the page has gone without
            # a frame for a while (a drag that never pauses must not starve it).
            if time.perf_counter() - self._taken_at < KEEP_FRAMES_FLOWING_S:
                self._frame = None
            version = self.version
        self._changed()
        return version

    def set_stop_at(self, step: int | None) -> None:
        """Play stops at ``step`` exactly (None: it does not stop)."""
        with self._lock:
            self._stop_at = step
        self._changed()

    def set_speed(self, speed: int) -> None:
        with self._lock:
            self._speed = speed
        self._changed()

    def play(self) -> None:
        with self._lock:
            if self.diverged:
                self._message("diverged", "danger", self._diverged_text())
                return
            self._playing = True
        self._changed()

    def pause(self) -> None:
        with self._lock:
            if self._playing:
                self._paused = True  # one more frame: the page's readout says 0 steps/s
            self._playing = False
        self._changed()

    def step(self, mode: str = "both") -> None:
        """One step (both nets, critic only "d", or generator only "g"); pauses."""
        with self._lock:
            self._playing = False
            if not self.diverged:
                self._queued.append(mode)
        self._changed()

    def reset(self, config: Config) -> int:
        """Restart from the config's seed (also clears a divergence, and an error until
        the restart meets it again)."""
        with self._lock:
            self.error = None
            self._message("error", None)
        return self.set_config(config, restart=True)

    def listen(self, listener: Callable[[Frame], None]) -> None:
        """Call ``listener(frame)`` with every frame the run makes (a live share)."""
        with self._lock:
            self._listeners.append(listener)

    def unlisten(self, listener: Callable[[Frame], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def want_frame(self) -> None:
        """A follower of this run (a live share) has shown its last frame: make the
        next one even if this run's own page has not taken the last yet (it then gets
        the newer one). A shared run goes at the pace of its fastest page."""
        with self._lock:
            if self._wanted:
                return
            self._wanted = True
        self._changed()

    def request_copy(self, receive: Callable) -> None:
        """Ask for a copy of the run as it is: ``receive(config, runs, state)`` is
        called from a worker with a state of its own (training on does not touch it)."""
        with self._lock:
            self._state_requests.append(receive)
        self._changed()

    def copy_state(self, timeout: float) -> tuple:
        """(config, runs, state) of the run as it is now, copied by a worker between
        chunks (``request_copy``); the caller waits. ``TimeoutError`` if no worker
        got to it in ``timeout`` seconds."""
        got: list[tuple] = []
        done = threading.Event()

        def receive(*copy):
            got.append(copy)
            done.set()

        self.request_copy(receive)
        if not done.wait(timeout):
            with self._lock:
                if receive in self._state_requests:
                    self._state_requests.remove(receive)
            raise TimeoutError(
                f"the trainer did not answer in {timeout:.0f} s (the server is busy); try again"
            )
        return got[0]

    def set_visible(self, visible: bool) -> None:
        """The page's tab is shown (or hidden: then the run costs nothing)."""
        with self._lock:
            self._visible = visible
        self._changed()

    @property
    def _state(self):
        """The run's state (unpacked: new arrays), or None before the first config."""
        return None if self._config is None else self._core.copy()[1]

    def _forget(self) -> None:
        self._frame = None
        self._core.close()

    # ------------------------------------------------------------------ page side
    def take_frame(self) -> Frame | None:
        """The next frame, if one is ready. The slot then empties and the run makes
        the one after: call this only once the page has shown the previous frame."""
        with self._lock:
            frame, self._frame = self._frame, None
            if frame is not None:
                self._taken_at = time.perf_counter()
        if frame is not None:
            self._changed()
        return frame

    def messages(self) -> dict[str, tuple[str, str] | None]:
        """Current notices by topic: (alert kind, text) or None."""
        with self._lock:
            return dict(self._messages)

    def _message(self, topic: str, kind: str | None, text: str | None = None) -> None:
        self._messages[topic] = None if kind is None else (kind, text)

    def _say(self, topic: str, kind: str | None, text: str | None = None) -> None:
        with self._lock:
            self._message(topic, kind, text)

    def _diverged_text(self) -> str:
        return f"Training diverged: {self.diverged}. The run is paused; press Reset to start over."

    # ------------------------------------------------------------------ the job
    def due(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._state_requests and self._config is not None:
                return True  # a follower is waiting for a copy, even if this tab is hidden
            if not self._visible and not self._wanted:
                # a hidden tab: nothing to show, nothing to train; unless followers of
                # its shared run ask for frames (a teacher who switched to the slides)
                return False
            if self._pending is not None:
                return True
            if self.error:
                return False  # until a reset brings a new config
            if self._dirty or (self._paused and not self._playing):
                return self._frame is None or self._wanted
            if self._queued:
                return True
            return self._playing and time.monotonic() >= self._not_before

    def work(self) -> None:
        """One piece of work. A new config is applied and the piece it leads to (the
        frame, or a chunk with the new settings) is done in the same turn: applying is
        quick, and on a busy server each turn comes after every other run's."""
        try:
            if self._piece() and self.due():
                self._piece()
        except RunClosed:
            if not self._closed:
                raise  # the trainer forgot a run whose page is still there

    def _piece(self) -> bool:
        """One piece of work; True when it applied a new config."""
        with self._lock:
            requests, self._state_requests = self._state_requests, []
        if requests and self._config is not None:
            runs, copy = self._core.copy()  # arrays of its own
            for receive in requests:
                receive(self._config, runs, copy)
            return False
        with self._lock:
            self._state_requests = requests + self._state_requests  # none served yet
            pending, restart = self._pending, self._restart
            self._pending, self._restart = None, False
            version, playing, speed = self.version, self._playing, self._speed
            if self._paused:
                self._paused = False
                self._dirty = self._dirty or not playing  # a frame that shows the pause
            mode = None
            if pending is None and not self._dirty:
                if playing and self._stop_at is not None and self._step >= self._stop_at:
                    self._playing = playing = False  # the budget is spent
                if not (playing or self._queued):
                    return False
                mode = "both" if playing else self._queued.pop(0)
                if mode == "both" and self._stop_at is not None:
                    speed = min(speed, self._stop_at - self._step)
        if pending is not None:
            self._apply(pending, restart, version, playing)
            return True
        if self._dirty:
            self._make_frame(playing)
        else:
            self._train(mode, speed if mode == "both" and playing else 1, version)
        return False

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.error = f"{type(error).__name__}: {error}"
            self._playing = False
            self._queued.clear()
            self._message("error", "danger", f"The trainer stopped: {self.error}")

    # ------------------------------------------------------------------ pieces of work
    def _apply(self, config: Config, restart: bool, version: int, playing: bool) -> None:
        """Apply a new config to the run: the core's ``transition`` decides how."""
        old = self._config
        start, self._start = self._start, None  # continue from another run's copy
        change = self._core.apply(config, restart, start, self._say)
        if start is not None:
            notice = self._start_notice.format(step=change.step)
        else:
            notice = f"{change.reason} {config.seed}." if change.reason else None
        if change.new_networks:
            self._chunk_s, self._snap_s = {}, None  # other networks: other costs
        self._config, self._step, self._extent = config, change.step, change.extent
        with self._lock:
            self.error = None
            self._message("error", None)
        if change.kind == "restart":
            self._run_id = next(_RUN_IDS)
            self._scale_id += 1
            self._curves = _Curves()
            with self._lock:
                self.diverged = None
                self._message("diverged", None)
            self._say("run", "info" if notice else None, notice)
        elif change.kind == "adopt":
            self._scale_id += 1  # same networks; the critic's values may mean another thing
            self._say("run", "info", f"{change.reason}: {what_changed(old, config)}.")
        kept = change.kind != "restart"
        if not playing or not kept:
            self._state_version = version
        # While playing, the next frame comes after a chunk with the new settings: a
        # snapshot now would show steps made with the old ones. But only once between
        # two frames: on a busy server a slider dragged back and forth changes again
        # before each next frame is made, and dropping the steps every time starved its
        # page; the second change shows the steps trained since the first.
        keep = self._dirty and self._dropped
        self._dropped = self._dropped or self._dirty
        self._dirty = not playing or not kept or keep

    def _make_frame(self, playing: bool) -> None:
        """Snapshot the state into the one-frame slot and tell the page."""
        self._frames_since_w1 += 1
        now = time.perf_counter()
        w1_due = now - self._last_w1_t >= w1_every_s(self._sharing)
        with_w1 = w1_due and self._frames_since_w1 >= W1_EVERY_FRAMES
        shot = self._core.frame(with_w1, self._say)
        if with_w1:
            self._last_w1_t, self._frames_since_w1 = now, 0
        if shot.lost and not self.diverged:
            self._set_diverged("the generated points left the plane (NaN or huge)")
        if shot.seconds is not None:
            self._snap_s = _smoothed(self._snap_s, shot.seconds)
        curves = self._curves.take()
        frame = Frame(
            step=int(shot.snap["step"]),
            version=self._state_version,
            run_id=self._run_id,
            scale_id=self._scale_id,
            config=self._config,
            extent=self._extent,
            snap=shot.snap,
            curves=curves,
            hist=shot.hist,
            w1=shot.w1,
            steps_per_s=self._curves.steps_per_s if playing else 0.0,
            frame_steps=self._frame_steps if playing else None,
            drawn=shot.drawn,  # made by the trainer, not on the event loop that serves every page
        )
        with self._lock:
            self._frame, self._wanted = frame, False
            listeners = list(self._listeners)
        self._dirty = self._dropped = False
        for listener in listeners:
            listener(frame)
        if self._on_frame is not None:
            self._on_frame()

    def _train(self, mode: str, steps: int, version: int) -> None:
        """A frame's worth of steps (or one queued single step)."""
        if mode == "both":
            self._sharing = self._pool.sharing(besides=self) + 1
            steps = self._frame_steps = frame_steps(steps, self._frame_budget(), self._chunk_s)
            if self._steps_per_s_cap:
                start = max(self._not_before, time.monotonic())
                self._not_before = start + steps / self._steps_per_s_cap
        trained: Trained = self._core.train(chunk_plan(steps), mode, self._say)
        for n, sums, took in trained.chunks:
            if took is not None and mode == "both":
                self._chunk_s[n] = _smoothed(self._chunk_s.get(n), took)
            self._curves.add(sums, n)
        self._step = trained.step
        if trained.problem:
            self._set_diverged(trained.problem)
        self._state_version = version
        self._dirty = True
        if mode == "both" and self._stop_at is not None and self._step >= self._stop_at:
            with self._lock:
                self._playing = False  # the budget is spent: the frame shows that step

    def _frame_budget(self) -> float | None:
        """``frame_budget`` for this run now."""
        return frame_budget(
            self._pool.workers, self._sharing, self._frame_rate, self._snap_s or 0.0
        )

    def _set_diverged(self, problem: str) -> None:
        with self._lock:
            self.diverged = problem
            self._playing = False
            self._queued.clear()
            self._message("diverged", "danger", self._diverged_text())
