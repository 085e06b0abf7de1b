"""Point sets a user uploads: any bytes give usable points or one clear refusal, a
pickle is never run, and the app's registry keeps recent sets under stable names."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gan2d.core import points
from gan2d.core.points import MAX_BYTES, MAX_POINTS, MIN_POINTS, PointsError, parse_points

EXECUTED = []


def _record_execution():
    EXECUTED.append("a pickle ran")
    return "boom"


class Payload:
    """An object whose unpickling would run ``_record_execution``."""

    def __reduce__(self):
        return (_record_execution, ())


def npy_bytes(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def refusal(raw: bytes) -> str:
    with pytest.raises(PointsError) as info:
        parse_points(raw, "pts.csv")
    message = str(info.value)
    assert "pts.csv" in message and "\n" not in message
    return message


# ---------------------------------------------------------------------- any bytes

GOOD_NPY = npy_bytes(np.arange(12.0).reshape(6, 2))
csv_like = st.text(alphabet="0123456789.,;-+e \t\r\nnaifx\ufeff", max_size=300)
mutated_npy = st.builds(
    lambda cut, junk: GOOD_NPY[:cut] + junk,
    st.integers(0, len(GOOD_NPY)),
    st.binary(max_size=40),
)


def flip(raw: bytes, flips) -> bytes:
    out = bytearray(raw)
    for i, value in flips:
        out[i] = value
    return bytes(out)


flipped_npy = st.lists(  # damage in the header, which numpy tokenises
    st.tuples(st.integers(0, 127), st.integers(0, 255)), min_size=1, max_size=4
).map(lambda flips: flip(GOOD_NPY, flips))
any_bytes = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda b: b"\x93NUMPY" + b, st.binary(max_size=200)),
    csv_like.map(lambda t: t.encode("utf-8")),
    mutated_npy,
    flipped_npy,
)


@settings(max_examples=300, deadline=None)
@given(any_bytes)
def test_any_bytes_give_usable_points_or_a_points_error(raw):
    try:
        pts = parse_points(raw, "upload")
    except PointsError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert pts.dtype == np.float64 and pts.ndim == 2 and pts.shape[1] == 2
    assert MIN_POINTS <= len(pts) <= MAX_POINTS and np.isfinite(pts).all()


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(finite, finite), min_size=MIN_POINTS, max_size=60),
    st.sampled_from([",", ";", "\t", " ", ", ", " ; "]),
    st.booleans(),
    st.sampled_from(["\n", "\r\n"]),
)
def test_well_formed_csv_reads_back_the_numbers_exactly(rows, sep, header, newline):
    lines = (["x" + sep + "y"] if header else []) + [f"{x!r}{sep}{y!r}" for x, y in rows]
    pts = parse_points(newline.join(lines).encode(), "pts.csv")
    np.testing.assert_array_equal(pts, np.array(rows, dtype=np.float64))


npy_dtypes = st.sampled_from(
    ["<i1", "<u2", "<i8", ">i4", "<f2", "<f4", "<f8", ">f8", "<c8", "|b1", "<U3", "|S2"]
)


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(
        npy_dtypes,
        st.one_of(
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
            st.tuples(st.integers(0, 30), st.just(2)),
        ),
    ),
    st.booleans(),
)
def test_npy_of_any_shape_and_dtype_is_read_or_refused(array, fortran):
    if fortran:
        array = np.asfortranarray(array)
    usable = (
        array.dtype.kind in "iuf"
        and array.ndim == 2
        and array.shape[1] == 2
        and MIN_POINTS <= len(array) <= MAX_POINTS
    )
    if usable:
        with np.errstate(over="ignore"):
            usable = np.isfinite(array.astype(np.float64)).all()
    try:
        pts = parse_points(npy_bytes(array), "pts.npy")
    except PointsError:
        assert not usable
        return
    assert usable
    np.testing.assert_array_equal(pts, array.astype(np.float64))


# ---------------------------------------------------------------------- named refusals


def test_an_empty_file_is_refused():
    assert "empty" in refusal(b"")


def test_text_that_is_not_points_is_refused():
    assert "no rows of two numbers" in refusal(b"just a title\n\n")
    letter = refusal(b"Dear x,\nthis is a letter\n")
    assert "line 2 is not two numbers: 'this is a letter'" in letter
    assert "line 3 is not two numbers: '3,x'" in refusal(b"x,y\n1,2\n3,x\n4,5\n")


def test_a_long_bad_line_is_shown_shortened():
    message = refusal(b"1,2\n" + b"a" * 500 + b",b\n")
    assert "line 2" in message and "…" in message and len(message) < 120


def test_a_third_column_is_refused():
    assert "line 2 has 3 columns; expected two columns" in refusal(b"1,2\n3,4,5\n6,7\n")
    assert "line 1 has 1 column" in refusal(b"1\n2\n3\n")


def test_a_npy_of_the_wrong_shape_says_the_shape():
    assert "(4, 3); expected (N, 2)" in refusal(npy_bytes(np.zeros((4, 3))))
    assert "(6,)" in refusal(npy_bytes(np.zeros(6)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_says_how_many_rows(bad):
    pts = np.zeros((5, 2))
    pts[1, 0] = pts[3, 1] = bad
    assert "in 2 of 5 rows" in refusal(npy_bytes(pts))
    assert "NaN or infinite" in refusal(b"1,2\n3,nan\n4,5\n")


def test_a_file_over_the_byte_limit_is_refused_naming_the_limit():
    assert "limit of 5 MB" in refusal(b"1,2\n" * (MAX_BYTES // 4 + 1))


def test_too_many_points_are_refused_naming_the_limit():
    assert f"{MAX_POINTS:,}" in refusal(b"1,2\n" * (MAX_POINTS + 1))
    assert f"the limit is {MAX_POINTS:,}" in refusal(npy_bytes(np.zeros((MAX_POINTS + 1, 2))))


def test_too_few_points_are_refused():
    assert f"at least {MIN_POINTS}" in refusal(b"1,2\n3,4\n")


def test_binary_junk_is_neither_csv_nor_npy():
    assert "neither a CSV text file nor a .npy array" in refusal(bytes(range(256)) * 4)
    assert "neither" in refusal(b"1,2\x00\n3,4\n5,6\n")


def test_a_truncated_or_damaged_npy_is_refused():
    assert "truncated" in refusal(GOOD_NPY[:-8])
    assert "header" in refusal(GOOD_NPY[:20])


def test_a_huge_shape_in_a_npy_header_allocates_nothing():
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (99_999, 2)}
    np.lib.format.write_array_header_1_0(buffer, header)
    assert "truncated" in refusal(buffer.getvalue() + b"\0" * 64)  # data missing


def test_a_pickled_object_array_is_refused_and_never_run():
    raw = npy_bytes(np.array([[Payload(), 1.0]] * 3, dtype=object), allow_pickle=True)
    assert "Python objects" in refusal(raw)
    assert EXECUTED == []


@pytest.mark.parametrize("dtype", [complex, bool, "U4"])
def test_non_numeric_npy_is_refused(dtype):
    assert "expected real numbers" in refusal(npy_bytes(np.ones((4, 2), dtype=dtype)))


# ---------------------------------------------------------------------- good files


def test_a_header_and_good_rows_are_read():
    pts = parse_points(b"x,y\n0,0\n1.5,-2\n\n3e2,4\n")
    np.testing.assert_array_equal(pts, [[0, 0], [1.5, -2], [300, 4]])


def test_semicolon_tab_and_whitespace_separators_are_read():
    expected = [[1, 2], [3, 4], [5, 6]]
    for raw in (b"1;2\n3;4\n5;6", b"1\t2\n3\t4\n5\t6\n", b"  1   2\n3 4\r\n5 6  \n"):
        np.testing.assert_array_equal(parse_points(raw), expected)


def test_a_utf8_bom_and_blank_lines_are_ignored():
    pts = parse_points(b"\xef\xbb\xbfx;y\n\n1;2\n\n3;4\n5;6\n\n")
    np.testing.assert_array_equal(pts, [[1, 2], [3, 4], [5, 6]])


def test_an_integer_npy_is_read_as_floats():
    pts = parse_points(npy_bytes(np.arange(8, dtype=np.int16).reshape(4, 2)))
    assert pts.dtype == np.float64 and pts[-1].tolist() == [6.0, 7.0]


def test_five_megabytes_of_csv_parse_in_well_under_a_second():
    import time

    rows = np.random.default_rng(0).normal(size=(MAX_POINTS, 2))
    raw = "\n".join(f"{x:.17g},{y:.17g}" for x, y in rows).encode()[:MAX_BYTES]
    raw = raw[: raw.rindex(b"\n")]
    start = time.perf_counter()
    pts = parse_points(raw)
    assert time.perf_counter() - start < 1.0
    np.testing.assert_array_equal(pts, rows[: len(pts)])


# ---------------------------------------------------------------------- the view


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 20), st.just(2)), elements=finite))
def test_fit_to_view_centres_and_fills_the_view(pts):
    fitted = points.fit_to_view(pts, half_width=2.5)
    assert fitted.shape == pts.shape and np.isfinite(fitted).all()
    if (pts == pts[0]).all():
        assert (fitted == 0).all()
        return
    assert np.abs(fitted).max() == 2.5
    centre = (fitted.min(axis=0) + fitted.max(axis=0)) / 2
    assert np.abs(centre).max() < 1e-9
    assert not points.far_from_view(fitted, 2.5)


def test_far_from_view_spots_data_outside_the_plot():
    assert points.far_from_view(np.array([[0, 0], [100, 3], [1, 1]]))
    assert not points.far_from_view(np.array([[0, 0], [-5.9, 3], [1, 1]]))


# ---------------------------------------------------------------------- the registry


def test_equal_points_get_the_same_name_and_come_back_read_only():
    pts = np.random.default_rng(3).normal(size=(10, 2))
    name = points.register(pts)
    assert name.startswith("points:") and len(name) == len("points:") + 16
    assert points.register(pts.copy()) == name and points.is_point_set(name)
    assert points.register(pts + 1) != name
    held = points.lookup(name)
    np.testing.assert_array_equal(held, pts)
    with pytest.raises(ValueError):
        held[0, 0] = 5.0
    pts[0, 0] = 99.0  # the caller's array is not the held one
    assert points.lookup(name)[0, 0] != 99.0


def test_the_least_recently_used_set_is_dropped_with_a_clear_message():
    base = np.random.default_rng(4).normal(size=(5, 2))
    oldest, kept = points.register(base), points.register(base + 0.5)
    for i in range(points.HELD_SETS - 1):
        points.lookup(kept)  # used lately: kept
        points.register(base + 1 + i)
    points.lookup(kept)
    with pytest.raises(PointsError, match="no longer held by this server; upload or draw it"):
        points.lookup(oldest)
    assert points.lookup(kept).shape == (5, 2)
