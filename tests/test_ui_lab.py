"""The lab page without a browser: controls are widgets of the settings, bad links and
bad combinations warn on the page instead of failing, frames wait for the page."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from helpers import wait_until

from gan2d.core.programs import PROGRAMS
from gan2d.presets import PRESETS
from gan2d.ui import page
from gan2d.ui import settings as ls
from gan2d.ui.lab import Lab
from gan2d.ui.scheduler import Scheduler
from gan2d.ui.session import LabRun


def test_lab_page_warns_about_a_bad_link_and_keeps_defaults():
    lab = Lab(query={"lr_d": "banana", "hide": "controls", "loss": "ns"})
    assert lab.url_alert.visible and "lr_d" in lab.url_alert.object
    assert lab.config.loss == "ns" and lab.widgets["loss"].value == "ns"
    assert lab.widgets["lr_d"].value == lab.config.lr_d
    assert not lab.sidebar.visible and lab.transport.toggle.visible
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
    assert lab.config.optimizer == "sgd" and lab.widgets["optimizer"].value == "sgd"
    assert "vanilla-collapse" in lab.explain.object


def test_settings_and_widgets_follow_each_other_both_ways():
    lab = Lab()
    lab.settings.lr_d = 7e-4  # off the ladder (a link's value, say): the slider gains it
    assert lab.widgets["lr_d"].value == 7e-4 and 7e-4 in lab.widgets["lr_d"].values
    assert lab.widgets["lr_d"].values == sorted(lab.widgets["lr_d"].values)
    lab.widgets["loss"].value = "hinge"
    assert lab.settings.loss == "hinge" and lab.config.loss == "hinge"
    lab.settings.dataset = "grid25"  # a dataset brings its usual std
    assert lab.config.data_std == 0.05 and lab.settings.data_std == 0.05
    lab.settings.speed = 50  # the preset's own speed (20) is not in the link; another is
    assert lab.speed_slider.value == 50 and lab.query()["speed"] == "50"


def test_an_invalid_combination_is_refused_on_the_page_and_the_controls_go_back():
    lab = Lab(query={"preset": "best-grid25"})  # 5 generators: batch is a multiple of 5
    batch = lab.config.batch_size
    assert batch % 5 == 0
    lab.widgets["batch_size"].value = 64  # not a multiple of 5
    assert lab.notice.kind == "warning" and "multiple of" in lab.notice.text
    assert lab.settings.batch_size == batch and lab.widgets["batch_size"].value == batch
    assert lab.config.batch_size == batch
    lab.widgets["lr_g"].value = 1e-3  # the next good change applies and clears it
    assert lab.config.lr_g == 1e-3 and lab.notice.kind is None


def test_lab_sends_a_frame_only_after_the_page_acknowledges_the_last():
    pool = Scheduler(workers=1)
    lab = Lab(query={"loss": "ns", "width": "16", "depth": "1", "batch_size": "32"})
    lab.runner = LabRun(lab.config, lab.settings.speed, pool=pool)
    try:
        lab.runner.play()
        wait_until(lambda: lab.runner._frame is not None)
        lab._push()
        assert lab.clock.frame == 1
        shown = lab.clock.step
        wait_until(lambda: lab.runner._frame is not None)  # the next one waits
        lab._push()
        assert (lab.clock.frame, lab.clock.step) == (1, shown), "sent before the page painted"
        lab._on_ack(SimpleNamespace(data=0))  # a stale acknowledgement changes nothing
        assert lab.clock.frame == 1
        lab._on_ack(SimpleNamespace(data=1))  # the page has painted frame 1
        assert lab.clock.frame == 2 and lab.clock.step > shown
    finally:
        lab.close()
        pool.shutdown()


def test_the_default_programs_are_compiled_once_per_process(monkeypatch):
    """Regression: the server hook and every new page each started a compile."""
    calls = []
    monkeypatch.setattr(page, "warm_lab", lambda config: calls.append(config))
    monkeypatch.setattr("gan2d.ui.compare.warm_default", lambda: calls.append("compare"))
    lab_once = page._Once("lab", page._warm_lab)
    compare_once = page._Once("compare", page._warm_compare)
    monkeypatch.setattr(page, "warm_default", lab_once)
    monkeypatch.setattr(page, "warm_compare", compare_once)
    labs = []
    monkeypatch.setattr(page, "Lab", lambda **kw: labs.append(Lab(**kw)) or labs[-1])
    first = page.warm_default()
    assert page.warm_default() is first
    first.join(10)
    page.build_page()  # a page does not start another
    assert calls == [ls.preset_config(ls.DEFAULT_PRESET)]
    (lab,) = labs
    lab.on_first_frame()  # a first frame on any page warms Compare's runs, once
    lab.on_first_frame().join(10)
    assert calls == [ls.preset_config(ls.DEFAULT_PRESET), "compare"]


@pytest.mark.slow
def test_warming_puts_the_labs_programs_in_the_cache():
    from gan2d.core.runs import Runs
    from gan2d.ui.session import CHUNK_SIZES, warm_lab

    config = ls.preset_config(ls.DEFAULT_PRESET).with_changes(width=16, batch_size=32)
    warm_lab(config)
    runs = Runs([config])
    assert all(runs.is_compiled(n, packed=True) for n in CHUNK_SIZES)
    assert PROGRAMS.has(runs.cache_key("init"))
    from gan2d.core import snapshot
    from gan2d.ui.trainer import RESOLUTION

    assert snapshot.is_compiled(runs, RESOLUTION)


def test_past_the_open_session_limit_a_page_says_the_server_is_full(monkeypatch):
    from gan2d.ui.scheduler import scheduler

    monkeypatch.setenv("GAN2D_MAX_SESSIONS", str(scheduler().count(LabRun) + 1))
    first, second = Lab(), Lab()
    try:
        first.connect()
        assert first.runner is not None
        second.connect()
        assert second.runner is None
        assert second.notice.kind == "danger" and "server is full" in second.notice.text
        assert second.transport.toggle.disabled
        first.close()  # a closed tab frees its place
        third = Lab()
        third.connect()
        assert third.runner is not None
        third.close()
    finally:
        first.close()


def test_a_hidden_tab_says_so_in_the_readout():
    lab = Lab()
    lab.connect()
    try:
        lab._on_ack(SimpleNamespace(data={"visible": False}))
        assert "tab hidden: training paused" in lab.clock.readout
        assert not lab.runner.due()
        lab._on_ack(SimpleNamespace(data={"visible": True}))
        assert "hidden" not in lab.clock.readout
    finally:
        lab.close()


def test_a_closed_lab_and_its_run_are_freed():
    """A student's tab closes: nothing of the server (the pool, the shares, the frame
    listeners) keeps the lab, its run or their frames alive."""
    import gc
    import weakref

    pool = Scheduler(workers=1)

    def play_share_and_close() -> list:
        lab = Lab(query={"loss": "ns", "width": "16", "depth": "1", "batch_size": "32"})
        lab.runner = LabRun(lab.config, lab.settings.speed, pool=pool)
        lab.runner.play()
        wait_until(lambda: lab.runner._frame is not None)
        lab._push()
        lab._share_live()  # a shared run too: its share must not hold it either
        lab._on_ack(SimpleNamespace(data=1))
        refs = [weakref.ref(lab), weakref.ref(lab.runner), weakref.ref(lab._last_frame)]
        refs.append(weakref.ref(lab.copy_button))  # a button with code for the page
        lab.close()
        return refs

    try:
        refs = play_share_and_close()
        wait_until(lambda: pool.jobs == 0 and pool.working == 0)  # its last piece ends
        gc.collect()
        assert [r() is None for r in refs] == [True, True, True, True]
    finally:
        pool.shutdown()


def test_the_preset_text_says_when_the_settings_have_left_the_preset():
    lab = Lab(query={"preset": "wgan-gp"})
    assert "modified" not in lab.explain.object
    lab.settings.seed = 4  # another seed is still the preset
    assert "modified" not in lab.explain.object
    lab.settings.loss = "minimax"
    lab.settings.dataset = "spiral"
    assert "(modified: dataset, data_std, loss;" in lab.explain.object
    lab.settings.preset = "ns-gan"  # a preset chosen again: its own text, unmarked
    assert "**ns-gan** —" in lab.explain.object and "modified" not in lab.explain.object


def test_the_readout_shows_progress_through_the_preset_while_it_is_the_preset():
    from test_ui_plots import make_frame

    lab = Lab(query={"preset": "ns-gan"})
    frame = make_frame(1250)
    length = f"{PRESETS['ns-gan'].steps:,}"
    assert f"1,250</b> of {length}" in lab._readout_html(frame)
    lab.settings.lr_d = 5e-4  # modified: the preset's length no longer says anything
    assert " of " not in lab._readout_html(frame).split("|")[0]


def test_on_a_busy_server_the_readout_says_when_a_frame_trains_fewer_steps(monkeypatch):
    import dataclasses

    from test_ui_plots import make_frame

    from gan2d.ui import lab as lab_module

    lab = Lab(query={"preset": "ns-gan", "speed": "20"})
    frame = make_frame(1250)
    busy = SimpleNamespace(sharing=lambda besides: 11)
    monkeypatch.setattr(lab_module, "scheduler", lambda: busy)
    full = lab._readout_html(dataclasses.replace(frame, frame_steps=20))
    assert full.endswith("sharing the server with 11 other runs")
    fewer = lab._readout_html(dataclasses.replace(frame, frame_steps=5))
    assert fewer.endswith("sharing the server with 11 other runs: 5 steps a frame, not 20")
    alone = SimpleNamespace(sharing=lambda besides: 0)
    monkeypatch.setattr(lab_module, "scheduler", lambda: alone)
    assert "sharing" not in lab._readout_html(dataclasses.replace(frame, frame_steps=5))


def test_the_presenter_view_is_large_and_hides_the_sidebar():
    from gan2d.ui.style import PRESENT_CSS

    lab = Lab(query={"present": "1"})
    assert not lab.sidebar.visible and "controls" in lab.settings.hide
    field = lab.plots.field
    assert field.width == field.height == 420  # fits 1280 x 720 with the readout
    assert lab.plots.field_map.real_on_top.visible  # real points drawn over the fakes
    assert PRESENT_CSS in lab.clock.stylesheets
    assert lab.query()["present"] == "1"
    lab.settings.present = False
    assert field.width == 560 and not lab.plots.field_map.real_on_top.visible
    assert "present" not in lab.query()
