"""Toy distributions: shapes, where the mass is, and the custom point cloud."""

import numpy as np
import pytest

from gan2d.core import data, points
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
        ("1,2\n3\n4,5\n", "line 2 has 1 column; expected two columns"),
        ("1,2\n3,x\n4,5\n", "line 2 is not two numbers: '3,x'"),
        ("1,2\n3,4\n", "at least 3"),
        ("1,2\nnan,3\n4,5\n", "NaN"),
    ],
)
def test_custom_csv_errors_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        data.load_points(str(path))
    assert "bad.csv" in str(info.value)


def test_custom_missing_file():
    with pytest.raises(ValueError, match="no such file"):
        data.load_points("/nonexistent/points.csv")


def test_custom_npy_is_recognised_by_its_bytes_not_its_name(tmp_path):
    pts = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    np.save(tmp_path / "pts.npy", pts)
    (tmp_path / "pts.npy").rename(tmp_path / "pts.dat")
    np.testing.assert_array_equal(data.load_points(str(tmp_path / "pts.dat")), pts)


def test_a_custom_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.truncate(2**30)  # sparse: a gigabyte that is never read
    with pytest.raises(points.PointsError, match="over the limit of 5 MB"):
        data.load_points(str(path))


def test_a_registered_point_set_is_custom_data():
    pts = np.array([[3.0, 0.0], [0.0, 3.0], [-3.0, -3.0]])
    config = Config.from_dict(
        {"dataset": "custom", "custom_path": points.register(pts), "data_std": "0"}
    )
    drawn = data.sample_numpy(config, 200, 0)
    assert {tuple(p) for p in np.round(drawn, 6)} == {tuple(p) for p in pts}
    assert data.data_extent(config) > 3.0
