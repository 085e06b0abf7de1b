"""A lab session's run and the scheduler that trains every session, without a browser:
live changes keep or restart the run as promised, a paused run costs nothing, every
session gets frames from a small pool, and failures reach the page."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from helpers import wait_until

from gan2d.core.config import Config
from gan2d.core.runs import Runs
from gan2d.ui import session
from gan2d.ui.scheduler import Job, Scheduler
from gan2d.ui.session import (
    LabRun,
    chunk_plan,
    frame_budget,
    frame_steps,
    w1_every_s,
)
from gan2d.ui.trainer import divergence

# small networks: each static config compiles in a second or two on a CPU
TINY = Config(width=16, depth=1, batch_size=32, loss="ns", lr_g=1e-3, lr_d=1e-3).validate()


def next_frame(run: LabRun, timeout: float = 60.0, after_version: int = -1):
    """Wait for the next frame (collecting it as the page does once it has painted the
    one before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = run.take_frame()
        if frame is not None:
            if frame.version > after_version:
                return frame
        elif run.error:
            raise AssertionError(f"the run failed: {run.error}")
        time.sleep(0.01)
    raise AssertionError("no frame within timeout")


@pytest.fixture
def run(pool):
    r = LabRun(TINY, speed=5, pool=pool)
    try:
        yield r
    finally:
        r.close()


def idle(run: LabRun) -> bool:
    """No piece of work is waiting for the run: the pool spends nothing on it."""
    return not run.due()


def test_chunk_plan_uses_two_compiled_sizes():
    assert chunk_plan(1) == [1]
    assert chunk_plan(2) == [1, 1]
    assert chunk_plan(7) == [5, 1, 1]
    assert chunk_plan(10) == [5, 5]
    assert sum(chunk_plan(50)) == 50 and set(chunk_plan(50)) == {5}


def test_a_busy_frame_trains_the_most_steps_that_fit_its_time():
    costs = {5: 0.010, 1: 0.003}  # seconds a chunk of 5 steps, of 1 step, took
    assert frame_steps(20, None, costs) == 20  # not busy: the steps asked
    assert frame_steps(20, 1.0, costs) == 20  # busy, but they fit
    assert frame_steps(20, 0.025, costs) == 11  # 5 + 5 + 1: 23 ms; 12 steps take 26
    assert frame_steps(20, 0.010, costs) == 5
    assert frame_steps(20, 0.007, costs) == 2
    assert frame_steps(20, -0.004, costs) == 1  # nothing fits: one step, never none
    assert frame_steps(3, 1.0, costs) == 3  # never more than asked
    assert frame_steps(20, 0.001, {}) == 20  # no cost measured yet: as asked
    assert frame_steps(5, 0.005, {5: 0.010}) == 2  # one step guessed at a fifth of five


def test_a_busy_run_keeps_its_frame_rate_but_trains_at_least_as_long_as_it_draws():
    assert frame_budget(workers=2, runs=1, rate=6.0, snap_s=0.005) is None  # alone
    assert frame_budget(workers=2, runs=30, rate=None, snap_s=0.005) is None  # turned off
    # 30 runs on 2 workers at 6 frames/s: 11.1 ms of the workers a frame, 5 of them drawing
    busy = frame_budget(workers=2, runs=30, rate=6.0, snap_s=0.005)
    assert busy == pytest.approx(2 / 180 - 0.005)
    assert frame_budget(workers=2, runs=4, rate=6.0, snap_s=0.005) == pytest.approx(2 / 24 - 0.005)
    # 60 runs: 5.6 ms a frame, but training keeps at least the 5 ms a frame's drawing takes
    assert frame_budget(workers=2, runs=60, rate=6.0, snap_s=0.005) == 0.005


def test_divergence_detects_nan_and_explosions():
    ok = {k: np.ones(3) for k in session.DIAGNOSTICS}
    assert divergence(ok) is None
    assert "NaN" in divergence({**ok, "d_loss": np.array([1.0, np.nan])})
    assert "exploded" in divergence({**ok, "g_grad_norm": np.array([1e9])})


def test_play_advances_and_a_paused_run_costs_nothing(run):
    first = next_frame(run)
    assert first.step == 0 and first.snap["fake"].shape == (512, 2)
    wait_until(lambda: idle(run))  # shown, not playing: nothing to do
    run.play()
    next_frame(run)
    later = next_frame(run)
    assert later.step > first.step and later.step % 5 == 0
    assert set(later.curves) >= {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm"}
    run.pause()
    run.step("both")  # queued behind the chunk a worker may be training
    frame = next_frame(run)
    while frame.step % 5 != 1:  # frames of 5-step chunks may still come first
        frame = next_frame(run)
    wait_until(lambda: idle(run))
    assert run.take_frame() is None and not run.playing


def test_pause_ends_with_a_frame_that_shows_the_run_stopped(run, monkeypatch):
    """Regression: Pause pressed while a worker made a frame of the playing run left the
    page on that frame, which said "135 steps/s", for as long as the run stayed paused."""
    make_frame = run._make_frame
    pressed = threading.Event()

    def pause_while_a_frame_is_made(playing):
        if playing and run._curves.steps_per_s > 0 and not pressed.is_set():
            pressed.set()
            run.pause()  # the user, while the worker snapshots the playing run
        make_frame(playing)

    monkeypatch.setattr(run, "_make_frame", pause_while_a_frame_is_made)
    next_frame(run)
    run.play()
    frame = next_frame(run)
    while not pressed.is_set() or frame.steps_per_s > 0:
        frame = next_frame(run, timeout=10)  # the page takes frames as it paints them
    wait_until(lambda: idle(run))
    assert run.take_frame() is None and frame.step == run._step


def test_the_run_keeps_one_frame_ready_and_no_more(pool):
    ready = threading.Event()
    r = LabRun(TINY, speed=5, on_frame=ready.set, pool=pool)
    try:
        assert ready.wait(60), "on_frame was never called"
        r.play()
        first = next_frame(r)
        # without the page collecting, the run stops after one frame and one chunk
        wait_until(lambda: r._frame is not None and idle(r))
        held = r._frame.step
        assert held == first.step + 5
        # collecting it lets the run make the next one, from the steps it trained
        assert r.take_frame().step == held
        assert next_frame(r).step == held + 5
    finally:
        r.close()


def test_single_steps_for_each_net(run):
    next_frame(run)
    for mode, expected in (("both", 1), ("d", 2), ("g", 3)):
        run.step(mode)
        assert next_frame(run).step == expected


def test_learning_rate_change_is_live_and_keeps_the_run(run):
    next_frame(run)
    run.play()
    before = next_frame(run)
    version = run.set_config(dataclasses.replace(TINY, lr_d=2e-4))
    after = next_frame(run, after_version=version - 1)
    assert after.version == version
    assert after.run_id == before.run_id and after.step >= before.step
    assert after.config.lr_d == 2e-4


def test_loss_change_keeps_the_networks(run):
    before = next_frame(run)
    version = run.set_config(dataclasses.replace(TINY, loss="wgan-gp"))
    after = next_frame(run, after_version=version - 1)
    assert after.run_id == before.run_id  # same run, curves continue
    assert after.scale_id != before.scale_id  # but the critic's colours mean something new
    np.testing.assert_array_equal(after.snap["fake"], before.snap["fake"])  # same generator
    assert "Kept the networks" in run.messages()["run"][1]


def test_width_change_restarts_with_a_notice(run):
    before = next_frame(run)
    run.step("both")
    assert next_frame(run).step == 1
    version = run.set_config(dataclasses.replace(TINY, width=8))
    after = next_frame(run, after_version=version - 1)
    assert after.run_id != before.run_id and after.step == 0
    kind, text = run.messages()["run"]
    assert kind == "info" and "restarted" in text


def test_divergence_pauses_with_a_message_and_reset_recovers(pool):
    wild = dataclasses.replace(
        TINY, loss="wgan-gp", gp_weight=0.0, optimizer="sgd", lr_d=1.0, lr_g=1.0, beta1=0.9
    )
    r = LabRun(wild, speed=5, pool=pool)
    try:
        next_frame(r)
        r.play()
        deadline = time.monotonic() + 60
        while not r.diverged and time.monotonic() < deadline:
            r.take_frame()
            time.sleep(0.01)
        assert r.diverged and not r.playing
        kind, text = r.messages()["diverged"]
        assert kind == "danger" and "Reset" in text
        r.play()  # refused until reset
        assert not r.playing
        version = r.reset(TINY)
        frame = next_frame(r, after_version=version - 1)
        assert frame.step == 0 and r.diverged is None and r.messages()["diverged"] is None
        assert np.all(np.isfinite(frame.snap["fake"]))
    finally:
        r.close()


# ---------------------------------------------------------------------- the scheduler


class Counter(Job):
    """A job that is always due and counts the pieces of work it was given."""

    def __init__(self, fail: bool = False):
        self.count = 0
        self.fail = fail
        self.errors: list[str] = []
        self.threads: set[str] = set()

    def due(self) -> bool:
        return not self.errors

    def work(self) -> None:
        self.count += 1
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("boom")
        time.sleep(0.001)  # a piece of work takes time, as training does

    def failed(self, error) -> None:
        self.errors.append(str(error))


def test_one_worker_shares_itself_fairly_between_due_jobs():
    pool = Scheduler(workers=1)
    jobs = [Counter() for _ in range(3)]
    try:
        for job in jobs:
            pool.add(job)
        wait_until(lambda: min(j.count for j in jobs) >= 30)
    finally:
        pool.shutdown()
    counts = [j.count for j in jobs]
    assert max(counts) - min(counts) <= 2, counts  # round robin
    assert all(j.threads == {"gan2d-worker-0"} for j in jobs)


def test_a_failing_job_is_told_and_the_others_keep_going():
    pool = Scheduler(workers=1)
    bad, good = Counter(fail=True), Counter()
    try:
        pool.add(bad)
        pool.add(good)
        wait_until(lambda: bad.errors and good.count > 10)
    finally:
        pool.shutdown()
    assert bad.errors == ["boom"] and bad.count == 1


def test_ten_sessions_on_two_workers_all_get_frames(pool):
    """There is no small cap on labs: every session gets a run, and they share."""
    runs = [LabRun(TINY.with_changes(seed=i), speed=5, pool=pool) for i in range(10)]
    try:
        for r in runs:
            r.play()
        for r in runs:
            next_frame(r)
        steps = [next_frame(r).step for r in runs]
        assert all(s > 0 for s in steps)
        assert pool.jobs == 10
    finally:
        for r in runs:
            r.close()
    assert pool.jobs == 0


def test_a_shared_run_trains_fewer_steps_a_frame_and_all_of_them_alone(pool, monkeypatch):
    """On a busy server a frame trains only the steps that fit the run's share of a
    frame period (at 1,000 frames/s that share is a millisecond, so a frame may train
    as long as its snapshot takes, less than one chunk of this slowed network: one
    step a frame); alone, the steps the page asks for."""
    monkeypatch.setenv("GAN2D_FRAME_RATE", "1000")
    packed_chunk = Runs.packed_chunk

    def costly_chunk(*args, **kwargs):  # a chunk of a network far bigger than TINY's
        time.sleep(0.02)
        return packed_chunk(*args, **kwargs)

    monkeypatch.setattr(Runs, "packed_chunk", costly_chunk)
    run = LabRun(TINY, speed=20, pool=pool)
    other = Counter()  # another run that always has work
    try:
        next_frame(run)
        run.play()
        pool.add(other)
        frames = [next_frame(run) for _ in range(6)]  # the first ones time the chunks
        assert [f.frame_steps for f in frames[-2:]] == [1, 1], [f.frame_steps for f in frames]
        assert frames[-1].step == frames[-2].step + 1
        pool.remove(other)
        wait_until(lambda: pool.sharing(besides=run) == 0)
        frames = [next_frame(run) for _ in range(4)]  # one may still be a busy frame
        assert [f.frame_steps for f in frames[-2:]] == [20, 20], [f.frame_steps for f in frames]
        assert frames[-1].step == frames[-2].step + 20
    finally:
        pool.remove(other)
        run.close()


def test_a_closed_run_leaves_the_pool_and_is_never_due(run, pool):
    next_frame(run)
    run.play()
    run.close()
    assert idle(run) and run not in pool._jobs


def test_a_failure_in_the_run_reaches_the_page_and_reset_recovers(run):
    next_frame(run)
    run.failed(RuntimeError("the device is gone"))
    kind, text = run.messages()["error"]
    assert kind == "danger" and "device is gone" in text
    assert idle(run) and not run.playing
    version = run.reset(TINY)
    wait_until(lambda: run.error is None)
    frame = next_frame(run, after_version=version - 1)
    assert frame.step == 0 and run.messages()["error"] is None


def hide_while_playing(run: LabRun) -> None:
    """Play ``run`` past its first frames, then hide its tab and wait until it rests."""
    next_frame(run)
    run.play()
    next_frame(run)
    run.set_visible(False)
    wait_until(lambda: idle(run))  # after the piece of work under way, nothing is due
    run.take_frame()  # even with its slot emptied, a hidden run stays idle
    assert idle(run) and run.playing


def test_a_hidden_tab_costs_nothing_and_resumes_when_shown(run):
    hide_while_playing(run)
    run.set_visible(True)
    assert next_frame(run).step > 0 and not idle(run)


def test_a_hidden_teachers_run_goes_on_while_its_followers_watch(run):
    """A teacher who switches to the slides hides the lab's tab; the class following
    its shared run still sees it train: each follower asks for the next frame once it
    has painted the last (``want_frame``), and with nobody asking the run rests."""
    shown = []
    run.listen(shown.append)
    hide_while_playing(run)
    steps = []
    for _ in range(3):
        count = len(shown)
        run.want_frame()  # a follower has painted the last frame
        wait_until(lambda: len(shown) > count)  # noqa: B023 (checked before the next turn)
        steps.append(shown[-1].step)
    assert steps[0] < steps[1] < steps[2]
    wait_until(lambda: idle(run))


def test_a_steps_per_second_ceiling_holds(pool, monkeypatch):
    monkeypatch.setenv("GAN2D_MAX_STEPS_PER_S", "100")
    r = LabRun(TINY, speed=10, pool=pool)
    try:
        first = next_frame(r)
        r.play()
        start = time.monotonic()
        frame = next_frame(r)
        while frame.step < 200:
            frame = next_frame(r)
        elapsed = time.monotonic() - start
        # 200 steps at 100 steps/s take at least 2 s (the first chunk may start at once)
        assert (frame.step - first.step - 10) / elapsed <= 100
    finally:
        r.close()


def test_the_pool_counts_the_runs_that_share_it():
    pool = Scheduler(workers=1)
    jobs = [Counter() for _ in range(3)]
    try:
        for job in jobs:
            pool.add(job)
        wait_until(lambda: min(j.count for j in jobs) > 2)
        assert pool.sharing() == 3 and pool.count(Counter) == 3
        pool.remove(jobs[0])
        assert pool.sharing() == 2 and pool.count(Counter) == 2
    finally:
        pool.shutdown()


def test_play_stops_exactly_at_a_challenges_budget(run):
    run.set_speed(20)
    run.set_stop_at(47)  # not a multiple of the speed: the last chunk is cut to fit
    next_frame(run)
    run.play()
    frames = []
    wait_until(lambda: (frames.append(run.take_frame()), not run.playing)[1])
    frame = next_frame(run) if run.due() or frames[-1] is None else frames[-1]
    assert frame.step == 47 and int(run._state["step"][0]) == 47
    assert not run.due()  # paused at the budget: nothing more to do
    run.set_stop_at(None)
    run.play()
    wait_until(lambda: next_frame(run).step > 47)


class ByHand:
    """A pool whose only worker is the test: it calls ``work()`` itself, so the order
    of a run's pieces of work and a page's actions is exactly the test's."""

    workers = 1

    def add(self, job) -> None:
        pass

    def remove(self, job) -> None:
        pass

    def wake(self) -> None:
        pass

    def sharing(self, window_s: float = 1.0, besides=None) -> int:
        return 0  # no other run: frames train the steps asked


def test_a_busy_server_computes_fewer_exact_w1s():
    """The exact W1 (an assignment problem, as costly as a frame's training) is about
    once a second for a run alone; on a server shared by 30 training runs, once every
    10 s each, so that the class's frames are not spent on it. A run's first frame has
    one either way."""
    assert w1_every_s(1) == 1.0 and w1_every_s(3) == 1.0
    assert w1_every_s(30) == pytest.approx(10.0)
    for others, has_w1 in ((0, True), (29, False)):
        pool = ByHand()
        pool.sharing = lambda window_s=1.0, besides=None, n=others: n
        run = LabRun(TINY, speed=5, pool=pool)
        try:
            while (first := run.take_frame()) is None:
                run.work()
            assert first.w1 is not None
            run.play()
            run._last_w1_t -= 5.0  # the last W1 was 5 s ago, many frames back
            run._frames_since_w1 = session.W1_EVERY_FRAMES
            run.work()  # a frame's steps
            run.work()  # its frame
            frame = run.take_frame()
            assert frame is not None and frame.step == 5
            assert (frame.w1 is not None) == has_w1, others
        finally:
            run.close()


def frames_while_a_slider_moves(turns: int) -> list:
    """A busy server: the run gets ``turns`` turns of the pool between two changes of
    a slider (every run waits for the others' turns), and its page takes each frame at
    once. Returns (frame, the settings' latest version) for each frame the page got."""
    run = LabRun(TINY, speed=5, pool=ByHand())
    try:
        while run.take_frame() is None:  # the config, then the first frame
            run.work()
        run.play()
        shown = []
        for i in range(12):
            latest = run.set_config(dataclasses.replace(TINY, lr_d=2e-4 if i % 2 else 3e-4))
            for _ in range(turns):
                if run.due():
                    run.work()
            frame = run.take_frame()
            if frame is not None:
                shown.append((frame, latest))
        return shown
    finally:
        run.close()


def test_a_slider_moved_on_a_busy_server_does_not_starve_the_page():
    """A change drops the steps trained since the last frame, so that the next frame
    shows the new setting; but only once between two frames. A student who drags a
    slider on a server shared with a class (a change before every turn of the pool)
    still sees the run train, and a change between frames still shows in the next."""
    shown = frames_while_a_slider_moves(turns=1)
    steps = [frame.step for frame, _ in shown]
    # a frame every third turn at least, showing every step trained but one chunk's
    assert len(shown) >= 4 and steps == sorted(steps) and steps[-1] >= 40, steps
    versions = [frame.version for frame, _ in shown]  # the settings of each frame's steps
    assert versions == sorted(versions) and versions[-1] > versions[0]
    quick = frames_while_a_slider_moves(turns=2)
    assert len(quick) == 12 and all(frame.version == latest for frame, latest in quick)


def test_a_frame_comes_drawn_so_the_page_only_hands_its_arrays_to_bokeh(run, monkeypatch):
    """The worker that makes a frame also makes the arrays its plots draw; showing the
    frame on a page (on the event loop that serves every page) makes none, and shows
    what the frame's snapshot draws."""
    from gan2d.ui import plots as lab_plots
    from gan2d.ui.plots import LabPlots, drawing

    frame = next_frame(run)
    assert frame.drawn is not None
    fresh = drawing(frame.snap, TINY.loss, frame.extent, TINY.n_generators, TINY.z_dim)
    assert frame.drawn.keys() == fresh.keys()
    for key in ("critic", "real_digest"):
        np.testing.assert_array_equal(frame.drawn[key], fresh[key])
    for key in ("real", "fake", "push", "grid_arrows", "manifold"):
        for column, values in fresh[key].items():
            np.testing.assert_array_equal(frame.drawn[key][column], values)

    def no_drawing_here(*args, **kwargs):
        raise AssertionError("a frame was drawn on the event loop")

    monkeypatch.setattr(lab_plots, "drawing", no_drawing_here)
    plots = LabPlots(extent=frame.extent)
    plots.update(frame, {"field": True, "manifold": True, "hist": True})
    np.testing.assert_array_equal(plots.field_map.fake_src.data["x"], fresh["fake"]["x"])
    np.testing.assert_array_equal(plots.manifold_src.data["ry"], fresh["manifold"]["ry"])
    np.testing.assert_array_equal(plots.field_map.critic_src.data["image"][0], fresh["critic"])


def test_a_lab_frame_passes_a_handful_of_arrays_not_one_per_weight(run, monkeypatch):
    # On a busy server each array passed to a program or brought back can wait for
    # Python's lock while the event loop holds it: the state (~40 arrays here, ~90 in
    # the default preset) and the snapshot (15) travel packed, a few buffers each.
    import jax

    from gan2d.core import runs as core_runs

    next_frame(run)
    calls = []
    real_get, real_call = jax.device_get, core_runs.Runs.packed_chunk

    def counting_get(tree):
        calls.append(("get", len(jax.tree_util.tree_leaves(tree))))
        return real_get(tree)

    def counting_chunk(self, packed, n, mode="both"):
        calls.append(("chunk", len(jax.tree_util.tree_leaves(packed))))
        return real_call(self, packed, n, mode)

    def counting_put(tree, *args, **kwargs):
        calls.append(("put", len(jax.tree_util.tree_leaves(tree))))
        return real_put(tree, *args, **kwargs)

    real_put = jax.device_put
    monkeypatch.setattr(jax, "device_get", counting_get)
    monkeypatch.setattr(jax, "device_put", counting_put)
    monkeypatch.setattr(core_runs.Runs, "packed_chunk", counting_chunk)
    run.play()
    frames = [next_frame(run) for _ in range(3)]
    run.pause()
    assert frames[-1].step > frames[0].step  # it trained meanwhile
    assert any(kind == "chunk" for kind, _ in calls) and any(k == "get" for k, _ in calls)
    assert max(n for _, n in calls) <= 3, calls
    # the snapshot's key and view went to the device once, for the first frame
    assert not any(kind == "put" for kind, _ in calls), calls


def test_a_data_change_passes_the_state_packed_not_array_by_array(run, monkeypatch):
    # a learning rate dragged on a busy server: repacking the state for each change
    # passed ~90 arrays through Python's lock (hundreds of ms with the event loop busy)
    import jax

    from gan2d.core import runs as core_runs

    first = next_frame(run)
    calls = []
    for name in ("pack", "unpack", "init", "with_hparams"):
        real = getattr(core_runs.Runs, name)

        def counting(self, *args, _name=name, _real=real, **kwargs):
            calls.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(core_runs.Runs, name, counting)
    real_put = jax.device_put

    def counting_put(tree, *args, **kwargs):
        calls.append(("put", len(jax.tree_util.tree_leaves(tree))))
        return real_put(tree, *args, **kwargs)

    monkeypatch.setattr(jax, "device_put", counting_put)
    version = run.set_config(TINY.with_changes(lr_d=3e-3, lr_g=2e-3))
    frame = next_frame(run, after_version=version - 1)
    assert frame.version == version and frame.config.lr_d == 3e-3
    assert frame.run_id == first.run_id and frame.step >= first.step  # the run went on
    assert calls == [("put", 1)], calls  # the new values, as one array
    state = run.copy_state(timeout=30)[2]
    assert float(state["hp"]["lr_d"][0]) == pytest.approx(3e-3)
    assert float(state["hp"]["lr_g"][0]) == pytest.approx(2e-3)
