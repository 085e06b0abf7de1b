"""Where a lab's networks live and train: in the server's process, or in a trainer
process beside it.

``RunCore`` is the compute side of one lab's run: its programs (``Runs``), its packed
state, and the four things done with them: apply a new config, train some chunks, take
a frame's snapshot (with its host metrics and the arrays the plots draw), copy the
state. ``LabRun`` (``gan2d.ui.session``) keeps everything else: what the page asked
for, the schedule, the curves, the notices.

A ``Trainer`` hands out cores. The one in this process (the default: tests, notebooks,
a GPU server) runs them here. ``TrainerProcess``, which ``panel serve app`` starts on a
CPU server (``serve``), runs them in a child process: a piece of training then holds
the child's Python lock, not the server's, so the event loop that sends every page its
frames never waits behind thirty runs' NumPy and dispatch work. Each worker thread of
the server's pool talks to its own thread in the child over its own socket; a worker
waits for the answer without holding the server's lock.

If the child dies (killed, out of memory), every run in it gets "the trainer process
stopped" and the next call starts a new child; Reset starts a run over there.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import jax
import numpy as np

from gan2d.core import data, metrics, points, snapshot
from gan2d.core.config import LOG_LOSSES, Config
from gan2d.core.runs import Change, Runs, run_state, transition
from gan2d.core.train import DIAGNOSTICS
from gan2d.ui.plots import lab_drawing
from gan2d.ui.scheduler import Scheduler

log = logging.getLogger("gan2d.app")

TRAINER_ENV = "GAN2D_TRAINER"  # "process" (the app's default on a CPU) or "thread"
RESOLUTION = snapshot.Resolution(samples=512, grid=64, arrows=16, manifold=24)
CHUNK_SIZES = (5, 1)
W1_POINTS = 256  # the exact W1 is computed on this many points
LOSS_LIMIT = 1e6  # |loss| above this counts as exploding
GRAD_LIMIT = 1e7
SAMPLE_LIMIT = 1e4  # generated points this far out: the generator has blown up
COMPILING = "Compiling the networks (a few seconds)…"
# with a trainer process, the pool's threads per worker: a thread whose answer has come
# back waits for the server's lock (held by the event loop about half the time in a
# class), and meanwhile another thread's request keeps the trainer busy
THREADS_PER_WORKER = 2

Say = Callable[[str, str | None, str | None], None]  # (topic, alert kind, text): a notice


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
    """Shares of real and fake points per bin of the critic's output."""
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
    return {"left": edges[:-1], "right": edges[1:], "real": h_real * scale, "fake": h_fake * scale}


def warm(runs: Runs, chunk_sizes, res: snapshot.Resolution) -> None:
    """Compile what a view of ``runs`` needs (blocking), in the order a page needs it:
    init and the snapshot (the first frame), then the chunk sizes (Play). The programs
    go to the shared (and persistent) compile cache."""
    snapshot.prepare(runs, res)
    for n in chunk_sizes:
        runs.prepare(n, packed=True)


class Applied(NamedTuple):
    """What applying a config did (``RunCore.apply``)."""

    kind: str  # the core's ``Change.kind``: "restart", "hparams" or "adopt"
    reason: str  # why it restarted or kept the networks ("" when it goes without saying)
    step: int  # the state's step now
    extent: float  # the view's half-width for this config's data
    new_networks: bool  # other programs than before: their costs are not known yet


class Trained(NamedTuple):
    """Some chunks of training (``RunCore.train``)."""

    chunks: list[tuple[int, dict[str, float], float | None]]  # (steps, sums, seconds)
    problem: str | None  # why the training diverged (it stopped at that chunk)
    step: int  # the state's step now


class Shot(NamedTuple):
    """A frame's content (``RunCore.frame``)."""

    snap: dict[str, np.ndarray]
    hist: dict[str, np.ndarray]
    w1: float | None
    drawn: dict
    seconds: float | None  # how long it took (None: it waited for a compile)
    lost: bool  # the generated points left the plane (NaN or huge)


class RunCore:
    """The compute side of one lab's run. One thread at a time uses a core: the pool
    never gives a job to two workers at once."""

    def __init__(self):
        self.runs: Runs | None = None
        self.packed = None  # the state, packed (``Runs.pack``): what the programs take
        self.config: Config | None = None
        self.extent = 1.0
        self.step = 0
        self._snap_key = np.zeros(2, np.uint32)  # on the host: a frame transfers nothing

    def apply(self, config: Config, restart: bool, start: tuple | None, say: Say) -> Applied:
        """Apply ``config`` (the core's ``transition`` decides how), or with ``start``
        (runs, state: another run's copy) continue from that state instead."""
        if not Runs([config]).has_program("init") and (
            self.runs is None or config.static_part() != self.runs.static
        ):
            say("compile", "info", COMPILING)
        if start is not None:
            runs, state = start
            change = Change("restart", runs, runs.pack(state), "")
            step = int(np.asarray(jax.device_get(state["step"]))[0])
        else:
            change = transition(self.runs, self.packed, [config], restart, packed=True)
            step = 0 if change.kind == "restart" else self.step
        new_networks = self.runs is None or change.runs.static != self.runs.static
        self.runs, self.packed, self.config, self.step = change.runs, change.state, config, step
        self.extent = data.data_extent(config)
        self._snap_key = np.asarray(jax.random.PRNGKey(config.seed + 1))
        return Applied(change.kind, change.reason, step, self.extent, new_networks)

    def train(self, plan: list[int], mode: str, say: Say) -> Trained:
        """Chunks of ``plan``'s sizes in ``mode``; stops at the first that diverges.
        Each chunk gives the sums of its diagnostics and the seconds it took (None when
        it compiled)."""
        self._need_state()
        chunks, problem = [], None
        for n in plan:
            compiled = self.runs.is_compiled(n, mode, packed=True)
            if not compiled:
                say("compile", "info", "Compiling this setting (a few seconds, once)…")
            began = time.perf_counter()
            self.packed, diag = self.runs.packed_chunk(self.packed, n, mode)
            diag = run_state(self.runs.fetch_diag(diag, n, mode), 0)
            took = time.perf_counter() - began if compiled else None
            problem = divergence(diag)
            if problem:
                break
            chunks.append((n, {k: float(np.sum(diag[k])) for k in DIAGNOSTICS}, took))
            self.step += n
        say("compile", None, None)
        return Trained(chunks, problem, self.step)

    def frame(self, with_w1: bool, say: Say) -> Shot:
        """The state's snapshot, its histogram, the exact W1 if asked, and the arrays the
        plots draw."""
        self._need_state()
        start = time.perf_counter()
        compiled = snapshot.is_compiled(self.runs, RESOLUTION)
        if not compiled:
            say("compile", "info", COMPILING)
        (snap,) = snapshot.take(self.runs, self.packed, self._snap_key, self.extent, RESOLUTION)
        say("compile", None, None)
        fake = snap["fake"]
        lost = not (np.all(np.isfinite(fake)) and np.max(np.abs(fake)) < SAMPLE_LIMIT)
        w1 = metrics.w1(fake[:W1_POINTS], snap["real"][:W1_POINTS]) if with_w1 else None
        hist = histogram(snap, self.config.loss in LOG_LOSSES)
        drawn = lab_drawing(snap, self.config, self.extent)
        took = time.perf_counter() - start if compiled else None
        return Shot(snap, hist, w1, drawn, took, lost)

    def copy(self) -> tuple[Runs, Any]:
        """(runs, state): the state unpacked into arrays of its own."""
        self._need_state()
        return self.runs, self.runs.unpack(self.packed)

    def close(self) -> None:
        """Nothing to do here: the state goes with the core (``TrainerProcess`` drops
        its copy in the child)."""

    def _need_state(self) -> None:
        if self.packed is None:
            raise RuntimeError(
                "this run's networks are gone (the trainer process restarted); "
                "press Reset to start over"
            )


class Trainer:
    """Cores in this process (the default)."""

    def core(self) -> RunCore:
        return RunCore()

    def warm(self, config: Config) -> None:
        """Compile what a lab of ``config`` needs (see ``warm``)."""
        warm(Runs([config]), CHUNK_SIZES, RESOLUTION)

    def stop(self) -> None:
        """Nothing runs outside this process."""


class TrainerStopped(RuntimeError):
    """The trainer process died (killed, out of memory): its runs are gone."""


class RunClosed(RuntimeError):
    """A piece of work for a run whose page has gone reached the trainer after it
    forgot the run."""


# errors that travel back from the child as themselves; any other as a RuntimeError
_ERRORS = {
    e.__name__: e
    for e in (ValueError, RuntimeError, FloatingPointError, MemoryError, TypeError, KeyError)
}
_ERRORS["RunClosed"] = RunClosed


class RemoteCore:
    """A ``RunCore`` in the trainer process, called from this one."""

    _ids = itertools.count(1)  # as ``session._RUN_IDS``: next() on it is atomic

    def __init__(self, trainer: TrainerProcess):
        self._trainer = trainer
        self._points_sent: tuple[int, str] | None = None  # (child, name) of the last sent
        self.id = next(RemoteCore._ids)

    def apply(self, config: Config, restart: bool, start: tuple | None, say: Say) -> Applied:
        if start is not None:  # (runs, state) here; (configs, host arrays) there
            start = (list(start[0].configs), jax.device_get(start[1]))
        # the user's own points are held in this process: the trainer gets a copy
        name, own = config.custom_path, None
        child = self._trainer.child_id()
        used = config.dataset == "custom" and points.is_point_set(name)
        if used and self._points_sent != (child, name):
            own = points.lookup(name)
        answer = self._trainer.call("apply", self.id, (config, restart, start, own), say)
        if own is not None:
            self._points_sent = (child, name)
        return answer

    def train(self, plan: list[int], mode: str, say: Say) -> Trained:
        return self._trainer.call("train", self.id, (plan, mode), say)

    def frame(self, with_w1: bool, say: Say) -> Shot:
        return self._trainer.call("frame", self.id, (with_w1,), say)

    def copy(self) -> tuple[Runs, Any]:
        configs, state = self._trainer.call("copy", self.id, (), None)
        return Runs(configs), state

    def close(self) -> None:
        self._trainer.drop(self.id)


class _Child:
    """One trainer process and this side's sockets to it: a control socket (forget a
    run; the child exits when it closes) and one per worker (requests and answers)."""

    def __init__(self, connections: int):
        pairs = [socket.socketpair() for _ in range(connections + 1)]
        fds = [theirs.fileno() for _, theirs in pairs]
        code = "from gan2d.ui.trainer import child_main; child_main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code, *map(str, fds)], pass_fds=fds)
        for _, theirs in pairs:
            theirs.close()
        ours = [Connection(mine.detach()) for mine, _ in pairs]
        self._control, self._control_lock = ours[0], threading.Lock()
        self._free: queue.Queue[Connection] = queue.Queue()
        for conn in ours[1:]:
            self._free.put(conn)
        self.alive = True
        log.info("gan2d: trainer process %d started", self.proc.pid)

    def call(self, method: str, run_id: int | None, args: tuple, say: Say | None):
        conn = self._free.get()
        try:
            conn.send((method, run_id, args))
            while True:
                answer = conn.recv()
                if answer[0] == "say":
                    if say is not None:
                        say(*answer[1])
                elif answer[0] == "ok":
                    return answer[1]
                else:
                    _, name, message = answer
                    raise _ERRORS.get(name, RuntimeError)(
                        message if name in _ERRORS else f"{name}: {message}"
                    )
        except (EOFError, OSError) as err:
            self.alive = False
            raise TrainerStopped(
                "the trainer process stopped; press Reset to start this run over"
            ) from err
        finally:
            self._free.put(conn)

    def drop(self, run_id: int) -> None:
        with self._control_lock:
            try:
                self._control.send(("drop", run_id))
            except OSError:
                self.alive = False

    def stop(self) -> None:
        self.alive = False
        self._control.close()  # the child exits when it reads the end
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class TrainerProcess:
    """Cores in a child process, started now and again if it dies. ``threads``: how
    many pieces of work may run there at once (the pool's threads, and one more for
    warming)."""

    def __init__(self, threads: int):
        self.threads = threads
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._child_now()

    @property
    def pid(self) -> int | None:
        with self._lock:
            return None if self._child is None else self._child.proc.pid

    def child_id(self) -> int:
        """Which trainer process it is now (a new one after a restart)."""
        return self._child_now().proc.pid

    def _child_now(self) -> _Child:
        with self._lock:
            if self._child is None or not self._child.alive:
                if self._child is not None:
                    log.warning("gan2d: the trainer process stopped; starting a new one")
                    self._child.stop()
                self._child = _Child(self.threads + 1)
            return self._child

    def call(self, method: str, run_id: int | None, args: tuple, say: Say | None = None):
        return self._child_now().call(method, run_id, args, say)

    def drop(self, run_id: int) -> None:
        with self._lock:
            child = self._child
        if child is not None and child.alive:
            child.drop(run_id)

    def core(self) -> RemoteCore:
        return RemoteCore(self)

    def warm(self, config: Config) -> None:
        self.call("warm", None, (config,))

    def stop(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.stop()


_trainer: Trainer | TrainerProcess = Trainer()


def trainer() -> Trainer | TrainerProcess:
    """The process-wide trainer: this process, unless ``serve`` started a child."""
    return _trainer


def serve(pool: Scheduler) -> Trainer | TrainerProcess:
    """Set the server's trainer (``panel serve app`` calls this once): a trainer process
    on a CPU server unless ``GAN2D_TRAINER=thread``; on a GPU, this process (two
    processes would each reserve most of the GPU's memory). With a trainer process,
    ``pool`` runs ``THREADS_PER_WORKER`` threads a worker (see ``Scheduler.set_threads``)."""
    global _trainer
    raw = os.environ.get(TRAINER_ENV, "")
    choice = raw.strip().lower() or "process"
    if choice not in ("process", "thread"):
        log.warning("gan2d: %s=%r is not 'process' or 'thread'; using 'process'", TRAINER_ENV, raw)
        choice = "process"
    if choice == "process" and jax.default_backend() != "cpu":
        log.info("gan2d: training in the server process (on the %s)", jax.default_backend())
        choice = "thread"
    if choice == "process" and isinstance(_trainer, Trainer):
        threads = THREADS_PER_WORKER * pool.workers
        _trainer = TrainerProcess(threads)
        pool.set_threads(threads)
    return _trainer


# ---------------------------------------------------------------------- the child's side


class _Serving:
    """The trainer process's side: the cores of its runs, by id, and the answer to each
    request."""

    def __init__(self):
        self.cores: dict[int, RunCore] = {}
        self.dropped: set[int] = set()
        self.lock = threading.Lock()

    def core_for(self, run_id: int) -> RunCore:
        with self.lock:
            if run_id in self.dropped:
                raise RunClosed(f"run {run_id} was closed")
            if run_id not in self.cores:
                self.cores[run_id] = RunCore()  # after a restart, only "apply" can use it
            return self.cores[run_id]

    def drop(self, run_id: int) -> None:
        with self.lock:
            self.cores.pop(run_id, None)
            self.dropped.add(run_id)

    def answer(self, conn: Connection, method: str, run_id: int | None, args: tuple):
        def say(*notice):
            conn.send(("say", notice))

        if method == "warm":
            return Trainer().warm(*args)
        if method == "held":  # how many runs it holds (they go when their pages do)
            with self.lock:
                return len(self.cores)
        core = self.core_for(run_id)
        if method == "apply":
            config, restart, start, own = args
            if own is not None:
                points.register(own)  # under the same name: it comes from the values
            if start is not None:  # (configs, host arrays) -> (runs, state)
                start = (Runs(start[0]), start[1])
            return core.apply(config, restart, start, say=say)
        if method == "train":
            return core.train(*args, say=say)
        if method == "frame":
            return core.frame(*args, say=say)
        if method == "copy":
            runs, state = core.copy()
            return list(runs.configs), jax.device_get(state)
        raise ValueError(f"no such request: {method!r}")

    def serve(self, conn: Connection) -> None:
        """Answer one socket's requests, one at a time, until it closes."""
        while True:
            try:
                method, run_id, args = conn.recv()
            except (EOFError, OSError):
                return
            try:
                reply = ("ok", self.answer(conn, method, run_id, args))
            except Exception as err:
                if not isinstance(err, RunClosed):
                    log.error("%s failed:\n%s", method, traceback.format_exc())
                reply = ("error", type(err).__name__, str(err))
            try:
                conn.send(reply)
            except pickle.PicklingError as err:
                conn.send(("error", type(err).__name__, str(err)))
            except OSError:
                return


def child_main() -> None:
    """The trainer process: serve the sockets whose descriptors are its arguments
    (control first) until the control socket closes."""
    logging.basicConfig(level=logging.INFO, format="gan2d trainer: %(message)s")
    control, *workers = (Connection(int(fd)) for fd in sys.argv[1:])
    serving = _Serving()
    for conn in workers:
        threading.Thread(target=serving.serve, args=(conn,), daemon=True).start()
    while True:
        try:
            message = control.recv()
        except (EOFError, OSError):
            os._exit(0)  # the server has gone
        if message[0] == "drop":
            serving.drop(message[1])
