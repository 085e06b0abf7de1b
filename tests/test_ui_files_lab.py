"""The lab's files without a browser: opening a config, weights or points changes the
run as promised, a bad file changes nothing, drawn points survive a config round trip,
and each download is the file it says."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import wait_until
from PIL import Image

from gan2d.core import points, runfile
from gan2d.core.runs import train_run
from gan2d.ui.lab import Lab

SMALL = {"preset": "ns-gan", "width": "16", "depth": "1", "batch_size": "32"}


@pytest.fixture
def lab():
    lab = Lab(query=dict(SMALL))
    lab.connect()
    try:
        yield lab
    finally:
        lab.close()


def _next_frame(lab):
    """The next frame that shows the lab's settings as they are now, taken as a page
    that has painted the last. A frame made before the last change (the page's first,
    made while the test changed the data, say) is shown and passed over, as the page
    would."""
    version = lab.runner.version
    while True:
        wait_until(lambda: lab.runner._frame is not None, timeout=120)
        lab._awaiting_ack = False
        lab._push()
        if lab._last_frame.version >= version:
            return lab._last_frame


def test_a_weights_file_goes_on_from_its_step(lab):
    config = lab.config
    raw = runfile.weights_npz(config, train_run(config, 12, chunk_size=12).state, "ns-gan")
    lab.files.open_file("w.npz", raw)
    assert "goes on from step 12" in lab.files.status.value
    assert _next_frame(lab).step == 12
    notice = ("info", "Loaded the weights: the run goes on from step 12.")
    assert lab.runner.messages()["run"] == notice
    copied_config, _runs, state = lab.runner.copy_state(30)
    assert copied_config == config and int(state["step"][0]) == 12


def test_a_config_file_sets_the_lab_and_restarts_it(lab):
    other = lab.config.with_changes(loss="wgan-gp", lr_d=5e-4, seed=7)
    lab.files.open_file("run.json", runfile.config_json(other, "wgan-gp").encode())
    assert lab.config == other and lab.settings.preset == "wgan-gp"
    assert lab.widgets["loss"].value == "wgan-gp" and lab.query()["seed"] == "7"


def test_a_bad_file_changes_nothing_and_says_why(lab):
    before = lab.config
    lab.files.open_file("bad.csv", b"x,y\n1,2\n3,banana\n")
    assert "line 3 is not two numbers" in lab.files.status.value
    assert lab.config == before
    lab.files.open_file("w.npz", b"PK\x03\x04 not really a zip")
    assert lab.config == before and "w.npz" in lab.files.status.value


def test_drawn_points_train_and_come_back_from_the_config(lab):
    lab.plots.drawn_src.data = {"x": [0.0, 1.0, -1.0], "y": [1.0, -1.0, -1.0]}
    lab.plots.stroke_src.data = {"xs": [[0.5, 0.6]], "ys": [[0.0, 0.1]]}
    lab.files.use_drawn()
    assert lab.config.dataset == "custom" and points.is_point_set(lab.config.custom_path)
    assert lab.plots.drawn_points().shape == (5, 2)
    config, preset = runfile.config_from_json(lab.files.make("config"))
    assert preset == "ns-gan" and config.dataset == "custom"
    np.testing.assert_array_equal(
        points.lookup(config.custom_path), points.lookup(lab.config.custom_path)
    )
    frame = _next_frame(lab)
    assert "live_modes" not in frame.snap and "none in your data" in lab.clock.readout


def test_too_few_drawn_points_are_refused(lab):
    lab.plots.drawn_src.data = {"x": [0.0], "y": [1.0]}
    with pytest.raises(ValueError, match="at least 3 points"):
        lab.files.use_drawn()
    assert lab.config.dataset == "ring8"


def test_the_downloads_are_the_files_they_say(lab):
    with pytest.raises(ValueError, match="press Play or Step"):
        lab.files.make("png")
    lab.runner.play()
    for _ in range(3):
        _next_frame(lab)
    lab.runner.pause()
    png = Image.open(io.BytesIO(lab.files.make("png")))
    assert png.format == "PNG" and png.size == (1920, 1080)
    gif = Image.open(io.BytesIO(lab.files.make("gif")))
    assert gif.format == "GIF" and gif.n_frames >= 2
    state = runfile.state_from_npz(lab.files.make("weights"), lab.config)
    assert int(state["step"]) >= lab.shown_step
    config, preset = runfile.config_from_json(lab.files.make("config"))
    assert (config, preset) == (lab.config, "ns-gan")


def test_loading_weights_starts_a_new_record_and_a_live_share_follows(lab):
    lab.runner.play()
    for _ in range(3):
        _next_frame(lab)
    lab.runner.pause()
    old_run = lab._last_frame.run_id
    lab._share_live()
    share = lab.share
    seen = share.number
    raw = runfile.weights_npz(lab.config, train_run(lab.config, 7, chunk_size=7).state)
    lab.files.open_file("w.npz", raw)
    frame = _next_frame(lab)
    assert frame.step == 7 and frame.run_id != old_run
    assert lab.history.steps() == [7]  # the replay record starts over with the new run
    assert share.run is lab.runner and share.number > seen  # followers see the new run


def test_a_follower_cannot_change_the_data_or_open_files(lab):
    lab.runner.step()
    _next_frame(lab)
    lab._share_live()
    follower = Lab(query={"follow": lab.share.code})
    try:
        before = (follower.config, follower.settings.preset)
        assert follower.files.dropper.disabled and follower.files.use_button.disabled
        other = follower.config.with_changes(loss="hinge")
        follower.files.open_file("run.json", runfile.config_json(other, "hinge").encode())
        assert "Make it mine first" in follower.files.status.value
        assert (follower.config, follower.settings.preset) == before
    finally:
        follower.close()


def test_the_same_file_dropped_again_is_opened_again(lab):
    opened = []
    lab.files.open_file = lambda name, raw: opened.append(name)
    first, again = b"1,2\n3,4\n5,6\n", b"1,2\n3,4\n5,6\n"
    for files in ({"a.csv": first}, {}, {"a.csv": again}, {"a.csv": again, "b.csv": first}):
        lab.files._opened(SimpleNamespace(new=files))
    assert opened == ["a.csv", "a.csv", "b.csv"]


def test_your_points_stay_with_the_lab_across_datasets(lab):
    pts = np.array([[0.0, 0.0], [1.0, 0.5], [-1.0, 2.0]])
    lab.use_points(pts, "three points")
    name = lab.config.custom_path
    lab.settings.dataset = "grid25"
    assert lab.config.dataset == "grid25" and lab.config.custom_path == ""
    assert "custom_path" not in lab.query()
    lab.settings.dataset = "custom"
    assert lab.config.custom_path == name and lab.config.data_std == 0.02


def test_a_download_that_cannot_be_made_says_why_at_the_top(lab):
    lab.files.downloads["gif"]._transfer()
    assert lab.notice.kind == "warning" and "Nothing to animate yet" in lab.notice.text
