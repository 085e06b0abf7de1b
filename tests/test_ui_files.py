"""Own data, replay and export in a real browser: points drawn with the mouse become the
training data; a bad CSV shows its error and the run goes on; a good one trains; each
download is a file that loads back; the timeline shows an earlier step."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from urllib.parse import parse_qsl

import jax
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect
from test_ui_browser import FRAME_MS, LOAD_MS, assert_clean, open_lab

from gan2d.core import runfile
from gan2d.core.runs import train_run
from gan2d.ui import settings as ls

pytestmark = pytest.mark.browser

# a small run, so the downloads' checks train it again in seconds
SMALL = "?preset=ns-gan&width=32&depth=2&batch_size=64&speed=5"


def _open_panel(page, label: str) -> None:
    """The files panels are on the page only once asked for (each model costs frames)."""
    page.get_by_role("button", name=label).click()


OWN_DATA = "Your own data: draw, open a file…"
SAVE = "Save: picture, animation, config, weights…"


def _dataset(page) -> str:
    return page.evaluate("gan2dTest.select('dataset').value")


def _step(page) -> int:
    return int(page.locator(".gan2d-step").first.inner_text().replace(",", ""))


def _map_box(page):
    """The critic map's canvas box (the largest canvas on the page)."""
    boxes = [c.bounding_box() for c in page.locator("canvas").all()]
    boxes = [b for b in boxes if b]
    return max(boxes, key=lambda b: b["width"] * b["height"])


def test_points_drawn_with_the_mouse_become_the_training_data(lab_page, app_server):
    page = lab_page
    open_lab(page, app_server.url + SMALL)
    _open_panel(page, OWN_DATA)
    page.get_by_role("button", name="Draw points").click()
    box = _map_box(page)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r = box["width"] / 4
    for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r)):
        page.mouse.click(cx + dx, cy + dy)
    page.mouse.move(cx - r, cy + r)  # and a stroke: a drag adds its points
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(cx - r + i * r / 5, cy + r, steps=2)
    page.mouse.up()
    before = _map_box(page)["y"]
    page.get_by_role("button", name="Train on these").click()
    page.get_by_text("Training on your").first.wait_for(timeout=FRAME_MS)
    assert _map_box(page)["y"] == before  # the notice that came did not move the plots
    page.wait_for_function("gan2dTest.select('dataset').value === 'custom'", timeout=FRAME_MS)
    page.get_by_role("button", name="Step", exact=True).click()
    page.wait_for_function("window.gan2d.step >= 1", timeout=LOAD_MS)
    assert "none in your data" in page.locator(".gan2d-step").first.locator("..").inner_text()
    assert_clean(page, app_server)


def _upload(page, name: str, data: bytes, mime: str = "text/csv") -> None:
    """Drop a file on the lab's box (browsers type files inconsistently: the box must
    take any type, and the bytes say what the file is)."""
    page.locator("input.filepond--browser").set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )


def test_a_bad_csv_shows_its_error_and_a_good_one_trains(lab_page, app_server):
    page = lab_page
    open_lab(page, app_server.url + SMALL)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.gan2d.step >= 10", timeout=LOAD_MS)
    _open_panel(page, OWN_DATA)
    _upload(page, "bad.csv", b"x,y\n1,2\n3,banana\n")
    page.get_by_text("line 3").wait_for(timeout=FRAME_MS)
    assert _dataset(page) == "ring8"
    step = _step(page)
    page.wait_for_function(f"window.gan2d.step > {step + 10}", timeout=FRAME_MS)  # goes on
    rng = np.random.default_rng(1)
    good = np.concatenate([rng.normal([-1, 0], 0.1, (50, 2)), rng.normal([1, 1], 0.1, (50, 2))])
    text = "x,y\n" + "\n".join(f"{x:.4f},{y:.4f}" for x, y in good)
    _upload(page, "two-blobs.csv", text.encode(), mime="application/vnd.ms-excel")
    page.get_by_text("Training on two-blobs.csv: 100 points").first.wait_for(timeout=FRAME_MS)
    page.wait_for_function("gan2dTest.select('dataset').value === 'custom'", timeout=FRAME_MS)
    page.wait_for_function("window.gan2d.step >= 20", timeout=LOAD_MS)
    page.get_by_role("button", name="Pause").click()
    assert_clean(page, app_server)


def _download(page, label: str) -> bytes:
    with page.expect_download(timeout=LOAD_MS) as info:
        page.get_by_role("button", name=label).click()
    path = info.value.path()
    with open(path, "rb") as handle:
        return handle.read()


def test_downloads_load_back_and_the_timeline_goes_back(lab_page, app_server, tmp_path):
    page = lab_page
    open_lab(page, app_server.url + SMALL)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.gan2d.step >= 150", timeout=LOAD_MS)
    page.get_by_role("button", name="Pause").click()
    readout = page.locator(".gan2d-step").first.locator("..")
    # stopped: "| 0 steps/s |" (not the tail of "1,230 steps/s", a frame from before)
    expect(readout).to_contain_text(re.compile(r"\|\s*0 steps/s"), timeout=FRAME_MS)
    step = _step(page)

    _open_panel(page, SAVE)
    png = Image.open(io.BytesIO(_download(page, "Picture (PNG)")))
    png.load()
    assert png.format == "PNG" and png.width >= 1200
    gif = Image.open(io.BytesIO(_download(page, "Animation (GIF)")))
    assert gif.format == "GIF" and gif.n_frames > 1

    raw_config = _download(page, "Config (JSON)")
    config, preset = runfile.config_from_json(raw_config)
    query = dict(parse_qsl(SMALL[1:]))
    assert preset == "ns-gan" and config == ls.parse_query(query).config
    raw_weights = _download(page, "Weights (NPZ)")
    state = runfile.state_from_npz(raw_weights, config)
    assert int(state["step"]) == step
    # the weights are the run's exact state: the same steps from the seed give them
    again = train_run(config, step, chunk_size=step).state
    for a, b in zip(
        jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(again), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    (tmp_path / "run.json").write_bytes(raw_config)
    (tmp_path / "w.npz").write_bytes(raw_weights)
    out = subprocess.run(
        [sys.executable, "-m", "gan2d", "eval", "--config", str(tmp_path / "run.json"),
         "--weights", str(tmp_path / "w.npz"), "--w1", "sliced"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["step"] == step

    # the timeline: back to the start of the run, then Live
    handle = page.locator(".noUi-handle").last
    handle.focus()
    handle.press("Home")
    # the readout itself (the timeline's own label may arrive a moment before it)
    readout = page.locator(".gan2d-readout").first
    expect(readout).to_contain_text("replaying step", timeout=FRAME_MS)
    assert _step(page) < step
    page.get_by_role("button", name="Live", exact=True).click()
    expect(page.locator(".gan2d-step").first).to_have_text(f"{step:,}", timeout=FRAME_MS)
    # and the lab opens its own weights file again (a browser gives .npz no type)
    page.get_by_role("button", name="Reset").first.click()
    expect(page.locator(".gan2d-step").first).to_have_text("0", timeout=FRAME_MS)
    _open_panel(page, OWN_DATA)
    _upload(page, "w.npz", raw_weights, mime="")
    page.get_by_text(f"goes on from step {step:,}").first.wait_for(timeout=FRAME_MS)
    expect(page.locator(".gan2d-step").first).to_have_text(f"{step:,}", timeout=FRAME_MS)
    assert_clean(page, app_server)
