"""The lab's session trainer and page logic, without a browser: live changes keep or
restart the run as promised, divergence pauses with a message, the server cap holds,
and bad links warn in the page instead of crashing it."""

from __future__ import annotations

import dataclasses
import threading
import time

import lab_runner
import numpy as np
import pytest
from lab_runner import Runner, ServerFull, chunk_plan, divergence

from gan2d.config import Config

# small networks: each static config compiles in a second or two on a CPU
TINY = Config(width=16, depth=1, batch_size=32, loss="ns", lr_g=1e-3, lr_d=1e-3).validate()


def next_frame(runner: Runner, timeout: float = 60.0, after_version: int = -1):
    """Wait for the next frame (collecting it as the page does once it has painted the
    one before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = runner.take_frame()
        if frame is not None:
            if frame.version > after_version:
                return frame
        elif not runner.alive:
            raise AssertionError(f"runner thread died: {runner.error}")
        time.sleep(0.01)
    raise AssertionError("no frame within timeout")


@pytest.fixture
def runner():
    r = Runner(TINY, speed=5)
    try:
        yield r
    finally:
        r.stop()
        r.join(10)


def test_chunk_plan_uses_two_compiled_sizes():
    assert chunk_plan(1) == [1]
    assert chunk_plan(2) == [1, 1]
    assert chunk_plan(10) == [5, 5]
    assert sum(chunk_plan(50)) == 50 and set(chunk_plan(50)) == {5}


def test_divergence_detects_nan_and_explosions():
    ok = {k: np.ones(3) for k in lab_runner.DIAGNOSTICS}
    assert divergence(ok) is None
    assert "NaN" in divergence({**ok, "d_loss": np.array([1.0, np.nan])})
    assert "exploded" in divergence({**ok, "g_grad_norm": np.array([1e9])})


def test_play_advances_and_pause_stops(runner):
    first = next_frame(runner)
    assert first.step == 0 and first.snap["fake"].shape == (512, 2)
    runner.play()
    later = next_frame(runner)
    later = next_frame(runner)
    assert later.step > first.step and later.step % 5 == 0
    assert set(later.curves) >= {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm"}
    runner.pause()
    runner.step("both")  # queued behind the chunk the worker may be training
    frame = next_frame(runner)
    while frame.step % 5 != 1:  # frames of 5-step chunks may still come first
        frame = next_frame(runner)
    time.sleep(0.3)  # paused: nothing more comes
    assert runner.take_frame() is None and not runner.playing


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_worker_keeps_one_frame_ready_and_no_more():
    ready = threading.Event()
    r = Runner(TINY, speed=5, on_frame=ready.set)
    try:
        assert ready.wait(60), "on_frame was never called"
        r.play()
        first = next_frame(r)
        # without the page collecting, the worker stops after preparing one frame
        wait_until(lambda: r._frame is not None)
        held = r._frame.step
        time.sleep(0.3)
        assert r._frame.step == held == first.step + 5
        # collecting it lets the worker make the next one, from the steps it trained
        assert r.take_frame().step == held
        assert next_frame(r).step == held + 5
    finally:
        r.stop()


def test_single_steps_for_each_net(runner):
    next_frame(runner)
    for mode, expected in (("both", 1), ("d", 2), ("g", 3)):
        runner.step(mode)
        assert next_frame(runner).step == expected


def test_learning_rate_change_is_live_and_keeps_the_run(runner):
    next_frame(runner)
    runner.play()
    before = next_frame(runner)
    version = runner.set_config(dataclasses.replace(TINY, lr_d=2e-4))
    after = next_frame(runner, after_version=version - 1)
    assert after.version == version
    assert after.run_id == before.run_id and after.step >= before.step
    assert after.config.lr_d == 2e-4


def test_loss_change_keeps_the_networks(runner):
    before = next_frame(runner)
    version = runner.set_config(dataclasses.replace(TINY, loss="wgan-gp"))
    after = next_frame(runner, after_version=version - 1)
    assert after.run_id == before.run_id  # same run, curves continue
    assert after.scale_id != before.scale_id  # but the critic's colours mean something new
    np.testing.assert_array_equal(after.snap["fake"], before.snap["fake"])  # same generator
    assert "Kept the networks" in runner.messages()["run"][1]


def test_width_change_restarts_with_a_notice(runner):
    before = next_frame(runner)
    runner.step("both")
    assert next_frame(runner).step == 1
    version = runner.set_config(dataclasses.replace(TINY, width=8))
    after = next_frame(runner, after_version=version - 1)
    assert after.run_id != before.run_id and after.step == 0
    kind, text = runner.messages()["run"]
    assert kind == "info" and "restarted" in text


def test_divergence_pauses_with_a_message_and_reset_recovers():
    wild = dataclasses.replace(
        TINY, loss="wgan-gp", gp_weight=0.0, optimizer="sgd", lr_d=1.0, lr_g=1.0, beta1=0.9
    )
    r = Runner(wild, speed=5)
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
        r.stop()


def test_server_caps_trainers(monkeypatch):
    monkeypatch.setattr(lab_runner, "_slots", threading.BoundedSemaphore(1))
    monkeypatch.setattr(lab_runner, "MAX_TRAINERS", 1)
    first = Runner(TINY, speed=5)
    try:
        with pytest.raises(ServerFull, match="limit"):
            Runner(TINY, speed=5)
    finally:
        first.stop()
    first.join(10)
    assert not first.alive
    again = Runner(TINY, speed=5)  # the slot came back
    again.stop()
    again.join(10)


def test_lab_page_warns_about_a_bad_link_and_keeps_defaults():
    from lab_view import Lab

    lab = Lab(query={"lr_d": "banana", "hide": "controls", "loss": "ns"})
    assert lab.url_alert.visible and "lr_d" in lab.url_alert.object
    assert lab.config.loss == "ns" and lab.widgets["loss"].value == "ns"
    assert lab.widgets["lr_d"].value == lab.config.lr_d
    assert not lab.sidebar.visible and lab.play_button.visible
    lab.widgets["lr_g"].value = 5e-4  # a widget drives the settings, config and link
    assert lab.settings.lr_g == 5e-4 and lab.config.lr_g == 5e-4
    assert lab.query()["lr_g"] == "0.0005" and lab.query()["hide"] == "controls"
    lab.widgets["width"].value = 32
    assert lab.config.width == 32
    # controls skip Panel's 50 ms batching delay, sliders also after new options
    assert lab.widgets["loss"]._priority_changes == ["value"]
    lab.widgets["lr_d"].options = {"0.001": 1e-3, "0.002": 2e-3}
    assert "value" in lab.widgets["lr_d"]._slider._priority_changes
    lab.settings.preset = "vanilla-collapse"
    assert lab.config.loss == "minimax" and lab.widgets["loss"].value == "minimax"
    assert "vanilla-collapse" in lab.explain.object


def test_lab_sends_a_frame_only_after_the_page_acknowledges_the_last():
    from types import SimpleNamespace

    from lab_view import Lab

    lab = Lab(query={"loss": "ns", "width": "16", "depth": "1", "batch_size": "32"})
    lab.runner = Runner(lab.config, lab.settings.speed)
    try:
        lab.runner.play()
        wait_until(lambda: lab.runner._frame is not None, timeout=60)
        lab._push()
        assert lab.clock.frame == 1
        shown = lab.clock.step
        wait_until(lambda: lab.runner._frame is not None, timeout=60)  # the next one waits
        lab._push()
        assert (lab.clock.frame, lab.clock.step) == (1, shown), "sent before the page painted"
        lab._on_ack(SimpleNamespace(data=0))  # a stale acknowledgement changes nothing
        assert lab.clock.frame == 1
        lab._on_ack(SimpleNamespace(data=1))  # the page has painted frame 1
        assert lab.clock.frame == 2 and lab.clock.step > shown
    finally:
        lab.runner.stop()
        lab.runner.join(10)
