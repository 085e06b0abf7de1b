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

import collections
import logging
import os
import threading

log = logging.getLogger("gan2d.app")
WORKERS_ENV = "GAN2D_WORKERS"


class Job:
    """A unit of schedulable work; subclasses implement ``due`` and ``work``."""

    name = "job"

    def due(self) -> bool:
        """Whether ``work()`` has something to do now (cheap; called often)."""
        raise NotImplementedError

    def work(self) -> None:
        """Do one small piece of work (on a worker thread)."""
        raise NotImplementedError

    def failed(self, error: BaseException) -> None:
        """``work()`` raised ``error``: stop and tell the user (default: log only)."""


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


def default_workers() -> int:
    """``GAN2D_WORKERS`` if set, else the number of cores."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value >= 1:
            return value
        log.warning(
            "gan2d: %s=%r is not a positive whole number; using the cores", WORKERS_ENV, raw
        )
    return max(1, os.cpu_count() or 1)


class Scheduler:
    """A pool of worker threads running the due jobs in turn."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()
        self._jobs: collections.deque[Job] = collections.deque()
        self._busy: set[int] = set()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False

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

    def wake(self) -> None:
        """A job may have become due: let idle workers look."""
        with self._cond:
            self._cond.notify_all()

    @property
    def jobs(self) -> int:
        with self._cond:
            return len(self._jobs)

    def active(self) -> int:
        """Jobs that are due or being worked on now (the load users share)."""
        with self._cond:
            return sum(1 for j in self._jobs if id(j) in self._busy or j.due())

    # ------------------------------------------------------------------ workers
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
        while len(self._threads) < self.workers:
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
                    self._cond.wait(0.5)
                    job = self._next()
                self._busy.add(id(job))
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
