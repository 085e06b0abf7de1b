"""The trainer process that `panel serve app` trains in on a CPU: a lab's run there
gives the same frames as one trained in the server's own process, its copy continues
the same run, notices and errors reach the page, a closed run is forgotten, and a
trainer process that dies costs its runs a Reset, not the server."""

from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest
from helpers import wait_until

from gan2d.core import points
from gan2d.core.config import Config
from gan2d.ui import trainer as trainer_module
from gan2d.ui.scheduler import Scheduler
from gan2d.ui.session import LabRun
from gan2d.ui.trainer import RunClosed, RunCore, Trainer, TrainerProcess

TINY = Config(width=16, depth=1, batch_size=32, loss="ns", lr_g=1e-3, lr_d=1e-3).validate()


@pytest.fixture(scope="module")
def child():
    process = TrainerProcess(threads=2)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def in_child(child, monkeypatch):
    """Labs made in this test train in the trainer process."""
    monkeypatch.setattr(trainer_module, "_trainer", child)
    return child


def frame_after(run: LabRun, step: int):
    """The first frame that shows ``step`` (collected as a page would)."""
    got = []

    def shown():
        frame = run.take_frame()
        assert not run.error, run.error
        if frame is not None and frame.step >= step:
            got.append(frame)
        return bool(got)

    wait_until(shown, timeout=120)
    return got[0]


def steps(run: LabRun, n: int) -> None:
    for _ in range(n):
        run.step()


def test_a_run_in_the_trainer_process_makes_the_same_frames_as_one_here(pool, child, monkeypatch):
    frames = []
    for where in (Trainer(), child):
        monkeypatch.setattr(trainer_module, "_trainer", where)
        run = LabRun(TINY, speed=5, pool=pool)
        try:
            frame_after(run, 0)
            steps(run, 7)
            frames.append(frame_after(run, 7))
        finally:
            run.close()
    here, there = frames
    assert here.step == there.step == 7
    for key in ("fake", "real", "critic", "arrow_uv"):
        np.testing.assert_array_equal(here.snap[key], there.snap[key])
    assert here.curves == pytest.approx(there.curves)
    assert here.hist["fake"] == pytest.approx(there.hist["fake"])
    assert sorted(here.drawn) == sorted(there.drawn)


def test_a_copy_from_the_trainer_process_continues_the_same_run(pool, in_child):
    teacher = LabRun(TINY, speed=5, pool=pool)
    try:
        frame_after(teacher, 0)
        steps(teacher, 4)
        frame_after(teacher, 4)
        config, runs, state = teacher.copy_state(60)
        assert int(state["step"][0]) == 4
        mine = LabRun(config, speed=5, pool=pool, start=(runs, state))
        try:
            first = frame_after(mine, 4)
            assert first.step == 4
            assert mine.messages()["run"] == ("info", "This lab is yours now, from step 4.")
            steps(teacher, 3)
            steps(mine, 3)
            np.testing.assert_array_equal(
                frame_after(teacher, 7).snap["fake"], frame_after(mine, 7).snap["fake"]
            )
        finally:
            mine.close()
    finally:
        teacher.close()


def test_a_compile_notice_and_an_error_come_back_from_the_trainer_process(child):
    core = child.core()
    try:
        with pytest.raises(RuntimeError, match="networks are gone"):
            core.train([1], "both", lambda *notice: None)
        said = []
        odd = Config(width=11, depth=1, batch_size=16, seed=5).validate()  # compiled by no other
        applied = core.apply(odd, False, None, lambda *notice: said.append(notice))
        assert applied.kind == "restart" and applied.step == 0
        assert said and said[0][:2] == ("compile", "info")
    finally:
        core.close()


def test_a_closed_run_is_forgotten_by_the_trainer_process(child):
    before = child.call("held", None, ())
    core = child.core()
    core.apply(TINY, False, None, lambda *notice: None)
    assert child.call("held", None, ()) == before + 1
    core.close()
    wait_until(lambda: child.call("held", None, ()) == before, timeout=10)
    # a piece of work that reaches it after the close says so, and a closed run's
    # job takes that quietly
    with pytest.raises(RunClosed):
        core.frame(False, lambda *notice: None)


def test_when_the_trainer_process_dies_its_runs_say_so_and_reset_starts_over(pool, caplog):
    process = TrainerProcess(threads=2)
    try:
        caplog.set_level(logging.CRITICAL, logger="gan2d.app")  # the pool logs the failure
        run = LabRun(TINY, speed=5, pool=pool, core=process.core())
        try:
            frame_after(run, 0)
            first = process.pid
            os.kill(first, signal.SIGKILL)
            run.play()
            wait_until(lambda: run.error is not None, timeout=60)
            assert "the trainer process stopped" in run.error
            assert "press Reset" in run.messages()["error"][1]
            run.reset(TINY)
            run.play()
            assert frame_after(run, 10).step >= 10
            assert process.pid not in (None, first)
            assert run.messages()["error"] is None
        finally:
            run.close()
    finally:
        process.stop()


def test_the_server_trains_in_a_process_unless_the_admin_says_thread(monkeypatch, caplog):
    made = []
    monkeypatch.setattr(trainer_module, "TrainerProcess", lambda threads: made.append(threads))
    for raw, expected in (("thread", Trainer), ("", None), ("gpu please", None)):
        monkeypatch.setattr(trainer_module, "_trainer", Trainer())
        monkeypatch.setenv(trainer_module.TRAINER_ENV, raw)
        pool = Scheduler(workers=3)
        try:
            chosen = trainer_module.serve(pool)
            if expected is Trainer:
                assert isinstance(chosen, Trainer) and not made and pool.threads == 3
            else:
                # a thread waiting for its answer leaves the trainer another's request
                assert made.pop() == pool.threads == 3 * trainer_module.THREADS_PER_WORKER
                assert pool.workers == 3  # a run's share is still counted in workers
        finally:
            pool.shutdown()
    assert "'gpu please' is not 'process' or 'thread'" in caplog.text


def test_a_core_here_keeps_its_state_to_itself():
    core = RunCore()
    with pytest.raises(RuntimeError, match="press Reset"):
        core.copy()
    core.apply(TINY, False, None, lambda *notice: None)
    runs, state = core.copy()
    assert int(state["step"][0]) == 0 and runs.configs == [TINY]


def test_a_lab_on_the_users_own_points_trains_in_the_trainer_process(pool, in_child):
    """Drawn or uploaded points are held by the server; the trainer gets a copy."""
    own = points.fit_to_view(np.random.default_rng(3).normal(size=(40, 2)) * [3.0, 0.5])
    name = points.register(own)
    config = TINY.with_changes(dataset="custom", custom_path=name)
    run = LabRun(config, speed=5, pool=pool)
    try:
        frame = frame_after(run, 0)
        real = frame.snap["real"]  # drawn from the points (with the data's small noise)
        x_spread, y_spread = real.std(axis=0)
        assert x_spread > 3 * y_spread  # the points' own shape: long in x, thin in y
        assert np.abs(real.mean(axis=0) - own.mean(axis=0)).max() < 0.3
        steps(run, 2)
        assert frame_after(run, 2).step == 2
    finally:
        run.close()
