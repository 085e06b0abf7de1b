"""The lab's trainer: one worker thread per browser session, paced by the browser.

The worker runs jitted chunks of the core's trainer and hands the page one frame at a
time through a one-frame slot. It works one frame ahead: while the page paints frame
N, the worker has frame N+1 waiting in the slot and trains the steps of N+2; it takes
that snapshot as soon as the page collects N+1. The page collects a frame only after
it has painted the previous one, so a slow browser gets fewer frames, never a backlog,
and "steps per frame" means what it says. Compiled programs live in the core's
process-wide cache, so sessions share them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

import jax
import numpy as np

from gan2d import data, fields, metrics
from gan2d.config import Config
from gan2d.train import DIAGNOSTICS, make_train

log = logging.getLogger("gan2d.app")

RESOLUTION = fields.Resolution(samples=512, grid=64, arrows=16, manifold=24)
CHUNK_SIZES = (5, 1)
W1_POINTS = 256  # exact W1 on this many points, about once a second
W1_EVERY_S = 1.0
KEEP_FRAMES_FLOWING_S = 0.25  # see Runner.set_config
LOSS_LIMIT = 1e6  # |loss| above this counts as exploding
GRAD_LIMIT = 1e7
SAMPLE_LIMIT = 1e4  # generated points this far out: the generator has blown up

MAX_TRAINERS = int(os.environ.get("GAN2D_MAX_TRAINERS", "4"))
_slots = threading.BoundedSemaphore(MAX_TRAINERS)


class ServerFull(RuntimeError):
    """Raised when every trainer slot of this server process is taken."""


def chunk_plan(speed: int) -> list[int]:
    """Steps per frame -> chunk sizes to run (only sizes in CHUNK_SIZES compile)."""
    base = 5 if speed % 5 == 0 else 1
    return [base] * (speed // base)


# --------------------------------------------------------------------- compile cache
_compiled: set = set()
_compiled_lock = threading.Lock()


def _is_compiled(config: Config, what) -> bool:
    with _compiled_lock:
        return (config.static_key(), what) in _compiled


def _mark_compiled(config: Config, what) -> None:
    with _compiled_lock:
        _compiled.add((config.static_key(), what))


def warm(config: Config, modes=("both",)) -> None:
    """Compile init, the chunk sizes and the snapshot of ``config`` (blocking)."""
    trainer = make_train(config)
    state = trainer.init()
    for mode in modes:
        for n in CHUNK_SIZES:
            state, _ = trainer.chunk(state, n, mode)
            _mark_compiled(config, (n, mode))
    snap = fields.make_snapshot(config, RESOLUTION)
    fields.to_host(snap(state, jax.random.PRNGKey(0), data.data_extent(config)))
    _mark_compiled(config, "snapshot")


_warm_started = threading.Event()


def warm_in_background(config: Config) -> None:
    """Compile the default preset once per process, off the event loop."""
    if _warm_started.is_set():
        return
    _warm_started.set()

    def run():
        t0 = time.perf_counter()
        try:
            warm(config)
            log.info("gan2d: default preset compiled in %.1f s", time.perf_counter() - t0)
        except Exception:
            log.exception("gan2d: warming the default preset failed")

    threading.Thread(target=run, name="gan2d-warm", daemon=True).start()


# --------------------------------------------------------------------- frames
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


def divergence(diag: dict[str, np.ndarray]) -> str | None:
    """A message when a chunk's diagnostics show NaN/inf or exploding values."""
    for key in DIAGNOSTICS:
        values = np.asarray(diag[key], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            return f"{key} became NaN or infinite"
    for key, limit in (
        ("d_loss", LOSS_LIMIT),
        ("g_loss", LOSS_LIMIT),
        ("d_grad_norm", GRAD_LIMIT),
        ("g_grad_norm", GRAD_LIMIT),
    ):
        peak = float(np.max(np.abs(diag[key])))
        if peak > limit:
            return f"{key} exploded (|{key}| = {peak:.3g})"
    return None


def histogram(snap: dict, probabilities: bool, bins: int = 30) -> dict[str, np.ndarray]:
    real = np.asarray(snap["d_real_values"], np.float64)
    fake = np.asarray(snap["d_fake_values"], np.float64)
    if probabilities:
        edges = np.linspace(0.0, 1.0, bins + 1)
    else:
        both = np.concatenate([real, fake])
        both = both[np.isfinite(both)]
        lo, hi = (float(both.min()), float(both.max())) if both.size else (-1.0, 1.0)
        if hi - lo < 1e-6:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
    h_real, _ = np.histogram(real, edges)
    h_fake, _ = np.histogram(fake, edges)
    scale = 1.0 / max(len(real), 1)
    return {
        "left": edges[:-1],
        "right": edges[1:],
        "real": h_real * scale,
        "fake": h_fake * scale,
    }


class Runner:
    """One session's training thread. Methods are called from the page's event loop;
    the worker applies them between chunks."""

    def __init__(self, config: Config, speed: int, on_frame=None):
        """``on_frame()`` is called from the worker thread each time a frame is ready."""
        if not _slots.acquire(blocking=False):
            raise ServerFull(
                f"This server is already running {MAX_TRAINERS} labs, its limit. "
                "Close another lab tab or try again in a minute."
            )
        self._released = False
        self._cond = threading.Condition()
        self._stop = False
        self._pending: Config | None = config
        self._restart = True
        self._speed = speed
        self._playing = False
        self._queued: list[str] = []
        self._frame: Frame | None = None
        self._taken_at = 0.0
        self._on_frame = on_frame
        self._messages: dict[str, tuple[str, str] | None] = {}
        self.version = 0
        self.diverged: str | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="gan2d-runner", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ controls
    def set_config(self, config: Config, restart: bool = False) -> int:
        """Ask for ``config``; returns its version (frames carry the version they show)."""
        with self._cond:
            self.version += 1
            self._pending = config
            self._restart = self._restart or restart
            # A frame waiting in the slot shows the old settings: drop it, so the next
            # frame the page gets shows the new ones. Not when the page has gone without
            # a frame for a while (a drag that never pauses must not starve it).
            if time.perf_counter() - self._taken_at < KEEP_FRAMES_FLOWING_S:
                self._frame = None
            self._cond.notify_all()
            return self.version

    def set_speed(self, speed: int) -> None:
        with self._cond:
            self._speed = speed
            self._cond.notify_all()

    def play(self) -> None:
        with self._cond:
            if self.diverged:
                self._message("diverged", "danger", self._diverged_text())
                return
            self._playing = True
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._playing = False
            self._cond.notify_all()

    def step(self, mode: str = "both") -> None:
        """One step (both nets, critic only "d", or generator only "g"); pauses."""
        with self._cond:
            self._playing = False
            if not self.diverged:
                self._queued.append(mode)
            self._cond.notify_all()

    def reset(self, config: Config) -> int:
        """Restart from the config's seed (also clears a divergence)."""
        return self.set_config(config, restart=True)

    @property
    def playing(self) -> bool:
        return self._playing

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._release()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ page side
    def take_frame(self) -> Frame | None:
        """The next frame, if one is ready. The slot then empties and the worker makes
        the one after: call this only once the page has shown the previous frame."""
        with self._cond:
            frame, self._frame = self._frame, None
            if frame is not None:
                self._taken_at = time.perf_counter()
                self._cond.notify_all()
            return frame

    def messages(self) -> dict[str, tuple[str, str] | None]:
        """Current notices by topic: (alert kind, text) or None."""
        with self._cond:
            return dict(self._messages)

    # ------------------------------------------------------------------ worker
    def _message(self, topic: str, kind: str | None, text: str | None = None) -> None:
        self._messages[topic] = None if kind is None else (kind, text)

    def _diverged_text(self) -> str:
        return f"Training diverged: {self.diverged}. The run is paused; press Reset to start over."

    def _release(self) -> None:
        with self._cond:
            if self._released:
                return
            self._released = True
        _slots.release()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:
            log.exception("gan2d: the lab's trainer stopped")
            with self._cond:
                self.error = f"{type(err).__name__}: {err}"
                self._playing = False
                self._message("error", "danger", f"The trainer stopped: {self.error}")
        finally:
            self._release()

    def _loop(self) -> None:
        trainer = state = snap_fn = None
        config: Config | None = None
        extent = 1.0
        run_id = scale_id = 0
        state_version = 0
        dirty = False  # the state has steps no frame has shown yet
        sums: dict[str, float] = {}
        count = 0
        rate_t, rate_steps, steps_per_s = time.perf_counter(), 0, 0.0
        last_w1_t = 0.0
        snap_key = jax.random.PRNGKey(0)

        while True:
            with self._cond:
                while not (
                    self._stop
                    or self._pending is not None
                    or (dirty and self._frame is None)
                    or (not dirty and (self._playing or self._queued))
                ):
                    self._cond.wait(0.5)
                if self._stop:
                    return
                pending, restart = self._pending, self._restart
                self._pending, self._restart = None, False
                version = self.version
                playing, speed = self._playing, self._speed
                mode = None
                if pending is None and not dirty:
                    mode = "both" if playing else self._queued.pop(0)

            if pending is not None:
                old = config
                new_trainer = make_train(pending)
                if restart or state is None or pending.seed != old.seed:
                    adopted = None
                    notice = None if state is None else "Run restarted from seed"
                else:
                    adopted = new_trainer.adopt(state)
                    notice = (
                        "The networks changed shape, so the run restarted from seed"
                        if adopted is None
                        else None
                    )
                if adopted is None:
                    if not _is_compiled(pending, "snapshot"):
                        self._say("compile", "info", "Compiling the networks (a few seconds)…")
                    state = new_trainer.init()
                    run_id += 1
                    scale_id += 1
                    sums, count = {}, 0
                    self.diverged = None
                    with self._cond:
                        self._message("diverged", None)
                    self._say(
                        "run",
                        "info" if notice else None,
                        f"{notice} {pending.seed}." if notice else None,
                    )
                else:
                    if pending.static_key() != old.static_key():
                        scale_id += 1  # same networks; the critic's values may mean another thing
                        self._say(
                            "run", "info", f"Kept the networks: {_what_changed(old, pending)}."
                        )
                    state = adopted
                trainer, config = new_trainer, pending
                snap_fn = fields.make_snapshot(config, RESOLUTION)
                extent = data.data_extent(config)
                snap_key = jax.random.PRNGKey(config.seed + 1)
                if not playing or adopted is None:
                    state_version = version
                # While playing, the next frame comes after a chunk with the new
                # settings: a snapshot now would show steps made with the old ones.
                dirty = not playing or adopted is None
                continue

            if dirty:
                snap = fields.to_host(snap_fn(state, snap_key, extent))
                _mark_compiled(config, "snapshot")
                self._say("compile", None)
                fake = snap["fake"]
                if not self.diverged and not (
                    np.all(np.isfinite(fake)) and np.max(np.abs(fake)) < SAMPLE_LIMIT
                ):
                    self._set_diverged("the generated points left the plane (NaN or huge)")
                now = time.perf_counter()
                w1 = None
                if now - last_w1_t >= W1_EVERY_S:
                    w1 = metrics.w1(snap["fake"][:W1_POINTS], snap["real"][:W1_POINTS])
                    last_w1_t = now
                if now - rate_t > 0.5:
                    steps_per_s = rate_steps / (now - rate_t)
                    rate_t, rate_steps = now, 0
                curves = {k: v / count for k, v in sums.items()} if count else {}
                sums, count = {}, 0
                frame = Frame(
                    step=int(snap["step"]),
                    version=state_version,
                    run_id=run_id,
                    scale_id=scale_id,
                    config=config,
                    extent=extent,
                    snap=snap,
                    curves=curves,
                    hist=histogram(snap, config.loss in ("minimax", "ns")),
                    w1=w1,
                    steps_per_s=steps_per_s if playing else 0.0,
                )
                with self._cond:
                    self._frame = frame
                dirty = False
                if self._on_frame is not None:
                    self._on_frame()
                continue

            # train: a frame's worth of steps (or one queued single step)
            plan = chunk_plan(speed) if mode == "both" and playing else [1]
            for n in plan:
                if not _is_compiled(config, (n, mode)):
                    self._say("compile", "info", "Compiling this setting (a few seconds, once)…")
                state, diag = trainer.chunk(state, n, mode)
                diag = jax.device_get(diag)
                _mark_compiled(config, (n, mode))
                problem = divergence(diag)
                if problem:
                    self._set_diverged(problem)
                    break
                for key in DIAGNOSTICS:
                    sums[key] = sums.get(key, 0.0) + float(np.sum(diag[key]))
                count += n
                rate_steps += n
            self._say("compile", None)
            state_version = version
            dirty = True

    def _set_diverged(self, problem: str) -> None:
        with self._cond:
            self.diverged = problem
            self._playing = False
            self._queued.clear()
            self._message("diverged", "danger", self._diverged_text())

    def _say(self, topic: str, kind: str | None, text: str | None = None) -> None:
        with self._cond:
            self._message(topic, kind, text)


def _what_changed(old: Config, new: Config) -> str:
    names = [
        f"{f.name}={getattr(new, f.name)}"
        for f in dataclasses.fields(Config)
        if f.metadata["static"] and getattr(old, f.name) != getattr(new, f.name)
    ]
    return ", ".join(names) or "settings changed"
