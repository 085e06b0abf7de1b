"""Point sets a user brings: parse uploaded bytes, fit them to the view, hold them.

``parse_points`` turns the bytes of a CSV or ``.npy`` file into an ``(N, 2)`` float64
array, or refuses them with a ``PointsError`` (a ``ValueError``) whose one sentence names
the file and the problem. It never unpickles, never allocates more than the file can
hold, and raises nothing else, whatever the bytes. ``check_points`` is the one set of
rules an array must pass, wherever it came from (a file, a config's embedded points).

The registry holds the point sets of the app's sessions in memory under a name derived
from their values (``points:`` + a hash), so a config can name them in ``custom_path``
and the compile cache, keyed by the config, tells equal data from different data.
"""

from __future__ import annotations

import collections
import hashlib
import io
import threading

import numpy as np

MAX_POINTS = 100_000
MAX_BYTES = 5 * 1024 * 1024
MIN_POINTS = 3
#: point sets the registry holds; the least recently used go first
HELD_SETS = 64
PREFIX = "points:"

_NPY_MAGIC = b"\x93NUMPY"
_BOM = b"\xef\xbb\xbf"
_SEPARATORS = str.maketrans({",": " ", ";": " ", "\t": " "})
_NUMERIC_KINDS = "iuf"  # signed, unsigned, floating; not bool, complex, text, objects


class PointsError(ValueError):
    """A point set that cannot be used, in one sentence naming the file and why."""


def _shorten(line: str, limit: int = 40) -> str:
    line = line.strip()
    return repr(line if len(line) <= limit else line[: limit - 1] + "…")


# ---------------------------------------------------------------------- checks


def too_big(name: str, n_bytes: int) -> PointsError:
    """The refusal of a file of ``n_bytes`` over ``MAX_BYTES``."""
    return PointsError(
        f"{name} is {n_bytes:,} bytes, over the limit of {MAX_BYTES // 2**20} MB "
        f"({MAX_BYTES:,} bytes)"
    )


def check_layout(shape: tuple, dtype: np.dtype, name: str = "the points") -> None:
    """Refuse an array of ``shape`` and ``dtype`` that cannot be a point set, before
    any of its values are read: not ``(N, 2)``, not real numbers, too few or too many."""
    if dtype.hasobject:
        raise PointsError(f"{name} holds Python objects, which are never loaded; save numbers")
    if len(shape) != 2 or shape[1] != 2:
        raise PointsError(f"{name} has shape {tuple(shape)}; expected (N, 2): one x, y per row")
    if dtype.kind not in _NUMERIC_KINDS:
        raise PointsError(f"{name} holds {dtype} values; expected real numbers")
    if shape[0] < MIN_POINTS:
        raise PointsError(f"{name} has {shape[0]} points; at least {MIN_POINTS} are needed")
    if shape[0] > MAX_POINTS:
        raise PointsError(f"{name} has {shape[0]:,} points; the limit is {MAX_POINTS:,}")


def check_points(array, name: str = "the points") -> np.ndarray:
    """``array`` as a fresh float64 ``(N, 2)`` array if it is a usable point set, else
    ``PointsError``: the one set of rules for files, uploads and embedded points."""
    try:
        array = np.asarray(array)
    except (ValueError, TypeError, OverflowError):
        raise PointsError(f"{name} is not a table of numbers, one x, y pair per row") from None
    check_layout(array.shape, array.dtype, name)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow becomes inf: refused below
        points = np.array(array, dtype=np.float64, order="C")
    bad = int((~np.isfinite(points)).any(axis=1).sum())
    if bad:
        raise PointsError(f"{name} contains NaN or infinite values in {bad} of {len(points)} rows")
    return points


# ---------------------------------------------------------------------- parsing


def parse_points(raw: bytes, name: str = "the file") -> np.ndarray:
    """The points in the bytes of a ``.npy`` file (recognised by its magic bytes) or a
    CSV text file: two numeric columns, an optional header line, separated by commas,
    semicolons, tabs or spaces. ``PointsError`` for anything else."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise PointsError(f"{name} is not bytes ({type(raw).__name__})")
    raw = bytes(raw)
    if not raw:
        raise PointsError(f"{name} is empty")
    if len(raw) > MAX_BYTES:
        raise too_big(name, len(raw))
    if raw.startswith(_NPY_MAGIC):
        return check_points(_load_npy(raw, name), name)
    return check_points(_parse_csv(raw, name), name)


def npy_header(stream) -> tuple[tuple, np.dtype]:
    """Shape and dtype (native byte order) of a ``.npy`` stream, read without its data.
    Damaged headers raise whatever numpy's tokeniser raises (callers catch them)."""
    fmt = np.lib.format
    version = fmt.read_magic(stream)
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f".npy version {version}")
    shape, _, dtype = readers[version](stream)
    return tuple(shape), dtype.newbyteorder("=")


def _load_npy(raw: bytes, name: str) -> np.ndarray:
    """The array of a ``.npy`` file, its header checked before its data is read."""
    buffer = io.BytesIO(raw)
    try:
        shape, dtype = npy_header(buffer)
    except Exception:  # numpy tokenises the header: damaged ones raise all kinds of errors
        raise PointsError(
            f"{name} is not a readable .npy file (its header is damaged or of an unknown "
            "version: save it with numpy.save)"
        ) from None
    check_layout(shape, dtype, name)
    if buffer.tell() + shape[0] * 2 * dtype.itemsize > len(raw):
        raise PointsError(f"{name} is a truncated .npy file: it holds fewer values than its shape")
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception:  # as above; the header was read once already, so this is rare
        raise PointsError(f"{name} is not a readable .npy file") from None


def _parse_csv(raw: bytes, name: str) -> np.ndarray:
    """Rows of two numbers; the first non-empty line may be a header."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise PointsError(f"{name} is neither a CSV text file nor a .npy array")
    rows: list[tuple[float, float]] = []
    header_allowed = True
    for lineno, line in enumerate(text.translate(_SEPARATORS).splitlines(), 1):
        cells = line.split()
        if not cells:
            continue
        first, header_allowed = header_allowed, False
        if len(cells) == 2:
            try:
                rows.append((float(cells[0]), float(cells[1])))
            except ValueError:
                if first:
                    continue  # a header
                raise _not_two_numbers(name, text, lineno) from None
            if len(rows) > MAX_POINTS:
                raise PointsError(f"{name} has more than the {MAX_POINTS:,} points allowed")
            continue
        if not _all_numbers(cells):
            if first:
                continue  # a header of another width
            raise _not_two_numbers(name, text, lineno)
        columns = f"{len(cells)} column" + ("s" if len(cells) > 1 else "")
        raise PointsError(f"{name}: line {lineno} has {columns}; expected two columns (x, y)")
    if not rows:
        raise PointsError(f"{name} holds no rows of two numbers")
    return np.array(rows, dtype=np.float64)


def _not_two_numbers(name: str, text: str, lineno: int) -> PointsError:
    line = text.splitlines()[lineno - 1]
    return PointsError(f"{name}: line {lineno} is not two numbers: {_shorten(line)}")


def _all_numbers(cells: list[str]) -> bool:
    try:
        for cell in cells:
            float(cell)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------- the view


def fit_to_view(points, half_width: float = 2.5) -> np.ndarray:
    """The points centred on their bounding box's centre and scaled so that the largest
    absolute coordinate is ``half_width`` (a single repeated point is only centred)."""
    pts = np.asarray(points, dtype=np.float64)
    scale = np.abs(pts).max()
    if scale == 0:
        return np.zeros_like(pts)
    unit = pts / scale  # in [-1, 1]: the steps below cannot overflow
    centred = unit - (unit.min(axis=0) / 2 + unit.max(axis=0) / 2)
    extent = np.abs(centred).max()
    if extent == 0:
        return centred
    # divide first: the largest coordinate becomes exactly +-1, so exactly half_width
    return centred / extent * half_width


def far_from_view(points, half_width: float = 6.0) -> bool:
    """Whether some point lies outside a square plot of this half-width."""
    return bool(np.abs(np.asarray(points, dtype=np.float64)).max() > half_width)


# ---------------------------------------------------------------------- the registry

_held: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
_lock = threading.Lock()


def is_point_set(name: str) -> bool:
    """Whether ``name`` names a registered point set (not a file)."""
    return isinstance(name, str) and name.startswith(PREFIX)


def register(points) -> str:
    """Hold ``points`` (checked) and return their name: equal points, equal names."""
    held = check_points(points, "the point set")
    held.setflags(write=False)
    name = PREFIX + hashlib.sha256(held.tobytes()).hexdigest()[:16]
    with _lock:
        if name in _held:
            _held.move_to_end(name)
        else:
            _held[name] = held
            while len(_held) > HELD_SETS:
                _held.popitem(last=False)
    return name


def lookup(name: str) -> np.ndarray:
    """The registered point set ``name`` (read-only); ``PointsError`` if not held."""
    with _lock:
        held = _held.get(name)
        if held is not None:
            _held.move_to_end(name)
    if held is None:
        raise PointsError(
            f"the point set {name} is no longer held by this server; upload or draw it again"
        )
    return held


__all__ = [
    "MAX_BYTES",
    "MAX_POINTS",
    "MIN_POINTS",
    "PointsError",
    "check_layout",
    "check_points",
    "far_from_view",
    "fit_to_view",
    "is_point_set",
    "lookup",
    "parse_points",
    "register",
]
