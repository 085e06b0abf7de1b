"""One scheduler per server process: a fixed pool of workers shared by every session.

A ``Job`` is whatever has training to do: a lab session, a Compare tab, a sweep. It
says whether it is *due* (a lab is due when its page has shown the last frame and it
is playing, or when it has a setting to apply), and ``work()`` does one small piece: a
frame's worth of steps, one snapshot, one chunk of a sweep. Workers take due jobs in
turn (round robin), so compute is shared fairly and a job is never run by two workers
at once. A paused, hidden or finished job is not due and costs nothing.

Jobs must not hold their own lock while calling ``Scheduler.wake`` (the scheduler calls
``due()`` under its lock, and ``due()`` takes the job's).
"""

from __future__ import annotations

import abc
import collections
import logging
import math
import os
import threading
import time

log = logging.getLogger("gan2d.app")
WORKERS_ENV = "GAN2D_WORKERS"
POLL_S = 0.05  # how often idle workers look again without being woken


class Job(abc.ABC):
    """A unit of schedulable work: what the pool asks of a lab, a Compare tab or a sweep."""

    name = "job"

    @abc.abstractmethod
    def due(self) -> bool:
        """Whether ``work()`` has something to do now (cheap; called often)."""

    @abc.abstractmethod
    def work(self) -> None:
        """Do one small piece of work (on a worker thread)."""

    def failed(self, error: BaseException) -> None:
        """``work()`` raised ``error``: stop and tell the user. The pool has logged it;
        a job with a page to tell overrides this."""
        del error  # nothing more to do by default


class PageJob(Job):
    """A job a page controls: it plays or not, and stops when the page goes.

    Subclasses set up their own fields, then call ``_join()`` to enter the pool; a
    control that may make the job due calls ``_changed()`` after releasing the lock."""

    def __init__(self, pool: Scheduler | None = None):
        self._lock = threading.Lock()
        self._pool = pool or scheduler()
        self._closed = False
        self._playing = False

    def _join(self) -> None:
        self._pool.add(self)

    def _changed(self) -> None:
        self._pool.wake()

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop: the pool forgets the job, and its memory can go."""
        with self._lock:
            self._closed = True
            self._forget()
        self._pool.remove(self)

    def _forget(self) -> None:
        """Drop what the page no longer needs (called under the lock on close)."""


def env_number(name: str, kind=int, minimum=1):
    """A positive number from the environment, or None (unset or not valid: logged)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < minimum:
        log.warning("gan2d: %s=%r is not a number >= %s; ignored", name, raw, minimum)
        return None
    return value


def default_workers() -> int:
    """``GAN2D_WORKERS`` if set, else the number of cores."""
    return env_number(WORKERS_ENV) or max(1, os.cpu_count() or 1)


class Scheduler:
    """A pool of worker threads running the due jobs in turn."""

    def __init__(self, workers: int | None = None):
        # pieces of work that compute at once: what a run's share of the machine is
        # counted in (``GAN2D_WORKERS``, by default the cores)
        self.workers = workers or default_workers()
        # threads that run pieces: as many, unless the work is done elsewhere (a trainer
        # process) and a thread mostly waits for it (``set_threads``)
        self.threads = self.workers
        self._jobs: collections.deque[Job] = collections.deque()
        self._busy: set[int] = set()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._worked: dict[int, float] = {}  # job id -> when it last got a piece of work

    # ------------------------------------------------------------------ jobs
    def add(self, job: Job) -> None:
        with self._cond:
            if job not in self._jobs:
                self._jobs.append(job)
            self._start_workers()
            self._cond.notify_all()

    def remove(self, job: Job) -> None:
        """Forget ``job``; a piece of its work already running finishes first."""
        with self._cond:
            if job in self._jobs:
                self._jobs.remove(job)
            self._worked.pop(id(job), None)

    def wake(self) -> None:
        """A job may have become due: let idle workers look."""
        with self._cond:
            self._cond.notify_all()

    @property
    def jobs(self) -> int:
        with self._cond:
            return len(self._jobs)

    @property
    def working(self) -> int:
        """Pieces of work running now (a removed job's last one may still be)."""
        with self._cond:
            return len(self._busy)

    def count(self, kind: type) -> int:
        """How many jobs of ``kind`` the pool holds (open lab sessions, say)."""
        with self._cond:
            return sum(isinstance(j, kind) for j in self._jobs)

    def sharing(self, window_s: float = 1.0, besides: Job | None = None) -> int:
        """How many jobs (``besides`` one) got work in the last ``window_s`` seconds: the
        runs that share the machine now (a paused or hidden one does not count)."""
        now = time.monotonic()
        skip = id(besides) if besides is not None else None
        with self._cond:
            return sum(1 for j, t in self._worked.items() if j != skip and now - t <= window_s)

    # ------------------------------------------------------------------ workers
    def set_threads(self, threads: int) -> None:
        """Run pieces on ``threads`` threads (more than ``workers`` when each mostly
        waits for a trainer process: while one thread's answer waits for this
        process's lock, another's request keeps the trainer busy)."""
        with self._cond:
            self.threads = max(self.threads, threads)
            self._start_workers()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the workers (after the pieces of work they are doing)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def _start_workers(self) -> None:
        if self._stopping:
            return
        while len(self._threads) < self.threads:
            thread = threading.Thread(
                target=self._run, name=f"gan2d-worker-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _next(self) -> Job | None:
        """The first due job that no worker holds, moved to the back of the line."""
        for _ in range(len(self._jobs)):
            job = self._jobs[0]
            self._jobs.rotate(-1)
            if id(job) not in self._busy and job.due():
                return job
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                job = None if self._stopping else self._next()
                while job is None:
                    if self._stopping:
                        return
                    # short: a job may become due with time alone (a steps/s ceiling)
                    self._cond.wait(POLL_S)
                    job = self._next()
                self._busy.add(id(job))
                self._worked[id(job)] = time.monotonic()
            try:
                job.work()
            except Exception as err:  # a job's failure must not stop the pool
                log.exception("gan2d: %s failed", job.name)
                try:
                    job.failed(err)
                except Exception:
                    log.exception("gan2d: %s could not report its failure", job.name)
            finally:
                with self._cond:
                    self._busy.discard(id(job))
                    self._cond.notify_all()


_scheduler: Scheduler | None = None
_scheduler_lock = threading.Lock()


def scheduler() -> Scheduler:
    """The process-wide scheduler (made on first use)."""
    global _scheduler
    with _scheduler_lock:
        if _scheduler is None:
            _scheduler = Scheduler()
        return _scheduler
