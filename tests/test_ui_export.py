"""Pictures of a run for slides, from frames of real short runs: the PNG is a full-HD
slide with the map, the points and the curves; the GIF animates the run within its
frame and size limits; data without modes and a one-dimensional latent draw too."""

from __future__ import annotations

import dataclasses
import io

import jax
import numpy as np
import pytest
from PIL import Image

from gan2d.core import data, snapshot
from gan2d.core.config import Config
from gan2d.core.runs import Runs, run_state
from gan2d.ui import export
from gan2d.ui.session import Frame
from gan2d.ui.style import D_COLOUR, FAKE, MODES_COLOUR
from gan2d.ui.trainer import RESOLUTION

TINY = dict(width=16, depth=1, batch_size=32, lr_g=1e-3, lr_d=1e-3)


def run_frames(config: Config, n: int, steps: int = 5):
    """``n`` frames of a real run, ``steps`` apart, and its curves as the app keeps them."""
    runs = Runs([config])
    state = runs.init()
    extent = data.data_extent(config)
    key = jax.random.PRNGKey(config.seed + 1)
    frames, rows = [], []
    for _ in range(n):
        state, diag = runs.chunk(state, steps)
        diag = run_state(jax.device_get(diag), 0)
        (snap,) = snapshot.take(runs, state, key, extent, RESOLUTION)
        step = int(snap["step"])
        frames.append(
            Frame(step=step, version=0, run_id=1, scale_id=1, config=config, extent=extent,
                  snap=snap, curves={}, hist={}, w1=None, steps_per_s=0.0)
        )  # fmt: skip
        row = {k: float(np.mean(diag[k])) for k in ("d_loss", "g_loss")}
        row["d_grad"] = float(np.mean(diag["d_grad_norm"]))
        row["g_grad"] = float(np.mean(diag["g_grad_norm"]))
        row["sliced_w1"] = float(snap["sliced_w1"])
        if "live_modes" in snap:
            row["modes"], row["hq"] = float(snap["live_modes"]), float(snap["live_hq"])
        rows.append((step, row))
    steps_seen = np.array([s for s, _ in rows], np.float64)
    curves = {key: (steps_seen, np.array([r[key] for _, r in rows])) for key in rows[-1][1]}
    curves["w1"] = (steps_seen[::10], curves["sliced_w1"][1][::10] * 1.2)
    return frames, curves


@pytest.fixture(scope="module")
def ring():
    return run_frames(Config(**TINY).validate(), 160)


def decode(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def pixels_like(rgb: np.ndarray, colour: str, tol: int = 6) -> int:
    """How many pixels are (nearly) ``colour``."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int(np.sum(np.abs(rgb.astype(int) - target).max(axis=-1) <= tol))


def test_slide_is_full_hd_with_the_generated_points_and_the_curves(ring):
    frames, curves = ring
    rgb = decode(export.render_png(frames[-1], curves, title="ring8 · NS GAN"))
    assert rgb.shape == (1080, 1920, 3)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 1000  # a picture, not a blank page
    assert pixels_like(rgb, FAKE) > 500  # the generated points, in the app's orange
    assert pixels_like(rgb, D_COLOUR) > 200  # the critic's curves
    assert pixels_like(rgb, MODES_COLOUR) > 100  # the modes curve

    bare = decode(export.render_png(frames[-1], {}, dpi=50))
    assert bare.shape == (360, 640, 3)
    assert pixels_like(bare, D_COLOUR) == 0  # no curves given: no curve plots


def without_modes(frame: Frame) -> Frame:
    """The frame as a run on data without modes has it (moons, a user's points): the
    same arrays less the live mode metrics. (A second real run would cost a compile.)"""
    snap = {k: v for k, v in frame.snap.items() if not k.startswith("live_")}
    config = dataclasses.replace(frame.config, dataset="moons").validate()
    return dataclasses.replace(frame, snap=snap, config=config)


def with_latent_line(frame: Frame) -> Frame:
    """The frame as a run with z_dim = 1 has it: its manifold a line of points (here the
    middle row of the mapped latent grid)."""
    res = RESOLUTION.manifold
    line = frame.snap["manifold"].reshape(res, res, 2)[res // 2]
    config = dataclasses.replace(frame.config, z_dim=1).validate()
    return dataclasses.replace(frame, snap={**frame.snap, "manifold": line}, config=config)


def test_data_without_modes_draws_no_modes_plot(ring):
    frames, curves = ring
    frames = [without_modes(f) for f in frames[:3]]
    assert "live_modes" not in frames[-1].snap
    # no modes plot, even if a caller passes mode curves
    rgb = decode(export.render_png(frames[-1], curves))
    assert rgb.shape == (1080, 1920, 3)
    assert pixels_like(rgb, FAKE) > 100
    assert pixels_like(rgb, D_COLOUR) > 100  # the other curves are there
    assert pixels_like(rgb, MODES_COLOUR) == 0
    assert Image.open(io.BytesIO(export.render_gif(frames))).n_frames == 3


def test_a_one_dimensional_latent_draws_its_manifold_as_a_line(ring):
    frames, curves = ring
    frames = [with_latent_line(f) for f in frames[:3]]
    rgb = decode(export.render_png(frames[-1], curves))
    assert pixels_like(rgb, export.MANIFOLD_ROWS, tol=2) > 50  # the line
    assert pixels_like(rgb, export.MANIFOLD_COLS, tol=2) == 0  # and no grid columns
    assert Image.open(io.BytesIO(export.render_gif(frames, size_px=200))).size == (200, 200)


def test_gif_animates_the_run_thinned_evenly_and_small(ring):
    frames, _ = ring
    gif = export.render_gif(frames[:40], size_px=240)
    image = Image.open(io.BytesIO(gif))
    assert image.format == "GIF" and image.size == (240, 240)
    assert image.n_frames == 40
    assert image.info.get("loop") == 0

    thin = Image.open(io.BytesIO(export.render_gif(frames, max_frames=12)))
    assert thin.n_frames == 12 and thin.size == (480, 480)
    kept = export.thinned(len(frames), 12)
    assert kept[0] == 0 and kept[-1] == len(frames) - 1 and len(kept) == 12
    assert np.all(np.diff(kept) >= len(frames) // 12 - 1)  # evenly spread

    full = export.render_gif(frames)  # 160 frames, thinned to the default 150
    assert Image.open(io.BytesIO(full)).n_frames == 150
    assert len(full) < 3 * 2**20


def test_gif_frames_show_the_step_and_the_points(ring):
    frames, _ = ring
    image = Image.open(io.BytesIO(export.render_gif([frames[0], frames[-1]])))
    image.seek(1)
    rgb = np.asarray(image.convert("RGB"))
    assert pixels_like(rgb, FAKE, tol=0) > 500  # the generated points
    assert pixels_like(rgb, export.TEXT_COLOUR, tol=0) > 50  # "step 800" in the corner
    assert pixels_like(rgb[:60, :200], export.TEXT_COLOUR, tol=0) > 50


def test_nothing_to_export_says_so():
    with pytest.raises(ValueError, match="no frames to export yet"):
        export.render_gif([])
    with pytest.raises(ValueError, match="no frames to export yet"):
        export.render_png(None, {})
