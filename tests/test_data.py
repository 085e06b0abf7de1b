"""Toy distributions: shapes, where the mass is, and the custom point cloud."""

import numpy as np
import pytest

from gan2d.core import data
from gan2d.core.config import DATASETS, Config


@pytest.mark.parametrize("dataset", [d for d in DATASETS if d != "custom"])
def test_every_dataset_samples_finite_points_in_view(dataset):
    config = Config.from_dict({"dataset": dataset})
    pts = data.sample_numpy(config, 2000, 0)
    assert pts.shape == (2000, 2) and np.isfinite(pts).all()
    assert np.abs(pts).max() < data.data_extent(config)
    assert pts.std(axis=0).min() > 0.3  # spread out, not a point


def test_ring_samples_sit_on_the_ring_in_equal_shares():
    config = Config(radius=3.0, n_modes=6)
    pts = data.sample_numpy(config, 6000, 1)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1).mean(), 3.0, atol=0.01)
    nearest = np.argmin(((pts[:, None] - data.mode_means(config)[None]) ** 2).sum(-1), axis=1)
    assert np.bincount(nearest, minlength=6).min() > 850


def test_grid25_means_are_the_published_grid():
    means = data.mode_means(Config(dataset="grid25", data_std=0.05))
    assert sorted(set(means[:, 0])) == [-4, -2, 0, 2, 4] and len(means) == 25


def test_checkerboard_fills_only_dark_squares():
    pts = data.sample_numpy(Config.from_dict({"dataset": "checkerboard"}), 4000, 2)
    parity = (np.floor(pts[:, 0]) + np.floor(pts[:, 1])) % 2
    assert (parity == 0).all()


def test_custom_csv_with_header_is_resampled(tmp_path):
    path = tmp_path / "pts.csv"
    path.write_text("x,y\n0,0\n1,1\n-1,2\n")
    config = Config.from_dict({"dataset": "custom", "custom_path": str(path), "data_std": "0"})
    pts = data.sample_numpy(config, 300, 0)
    assert {tuple(p) for p in np.round(pts, 6)} == {(0, 0), (1, 1), (-1, 2)}


@pytest.mark.parametrize(
    "content, message",
    [
        ("1,2\n3\n", "fewer than 2 columns"),
        ("1,2\n3,x\n", "not two numbers"),
        ("1,2\n", "at least 2 points"),
        ("1,2\nnan,3\n", "NaN"),
    ],
)
def test_custom_csv_errors_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        data.load_points(str(path))


def test_custom_missing_file():
    with pytest.raises(ValueError, match="no such file"):
        data.load_points("/nonexistent/points.csv")
