"""A run's files: its config as JSON, its full training state as ``.npz``.

A config file holds every setting (not only the changed ones, so a later change of a
default does not change what it means), the preset it started from, and for
``dataset=custom`` the points themselves: a registry name or a local path means nothing
on another machine. Loading it registers those points (``gan2d.core.points``).

A weights file holds one run's whole state (generator, critic, EMA generator, both
optimiser states, step, key and data hyper-parameters), one array per pytree path,
plus the config it was trained with. Training on from it continues the run bit for
bit. Neither kind of file is ever unpickled.
"""

from __future__ import annotations

import io
import json
from dataclasses import fields, replace

import jax
import jax.numpy as jnp
import numpy as np

from gan2d.core import data, points
from gan2d.core.config import SPECS, Config, is_static
from gan2d.core.spec import format_value
from gan2d.core.train import hparams_array, make_train

CONFIG_KIND = "config"
CONFIG_VERSION = 1
WEIGHTS_FORMAT = "gan2d-weights-1"
#: points embedded in a config file at most; more are thinned evenly
EMBED_MAX = 20_000
#: the largest config file read (20,000 embedded points take about 1 MB)
MAX_CONFIG_BYTES = 16 * 1024 * 1024
#: the largest weights file opened (a width-512 x depth-6 state is about 35 MB)
MAX_WEIGHTS_BYTES = 64 * 1024 * 1024
_META = ("__config__", "__format__")


class RunFileError(ValueError):
    """A config or weights file that cannot be used, in one line naming the file."""


# ---------------------------------------------------------------------- config files


def config_json(config: Config, preset: str | None = None) -> str:
    """The config file of ``config`` (started from ``preset``): a JSON document with
    every setting and, for custom data, the points (thinned to ``EMBED_MAX``)."""
    settings = config.to_dict(only_changed=False)
    head = {"gan2d": CONFIG_KIND, "version": CONFIG_VERSION, "preset": preset}
    if config.dataset != "custom":
        return json.dumps({**head, "settings": settings}, indent=2) + "\n"
    pts = data.load_points(config.custom_path)
    settings["custom_path"] = ""
    head["settings"] = settings
    if len(pts) > EMBED_MAX:
        head["points_thinned_from"] = len(pts)
        pts = pts[np.arange(EMBED_MAX) * len(pts) // EMBED_MAX]
    # one point per line: readable, and a diff of two files shows what moved
    rows = ",\n".join("    " + json.dumps(row) for row in pts.tolist())
    text = json.dumps(head, indent=2)
    return text[: -len("\n}")] + ',\n  "points": [\n' + rows + "\n  ]\n}\n"


def config_from_json(
    raw: bytes | str, name: str = "the config file", allow_paths: bool = False
) -> tuple[Config, str | None]:
    """The config and preset name in a config file; embedded points are registered
    and named in ``custom_path``. ``RunFileError`` says what is wrong. A file path in
    ``custom_path`` is refused unless ``allow_paths`` (the command line, on the user's
    own machine): an uploaded file must never make a server read one of its files."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise RunFileError(
            f"{name} is {len(raw):,} bytes, over the limit of {MAX_CONFIG_BYTES // 2**20} MB"
        )
    if not raw.strip():
        raise RunFileError(f"{name} is empty")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RunFileError(f"{name} is not valid JSON ({detail})") from None
    if not isinstance(doc, dict) or doc.get("gan2d") != CONFIG_KIND:
        raise RunFileError(f'{name} is not a gan2d config file (no "gan2d": "config" in it)')
    version = doc.get("version")
    if type(version) is not int or version != CONFIG_VERSION:
        raise RunFileError(
            f"{name} has version {version!r}; this gan2d reads version {CONFIG_VERSION}"
        )
    preset = doc.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise RunFileError(f'{name}: "preset" must be a name or null, not {preset!r}')
    settings = doc.get("settings")
    if not isinstance(settings, dict):
        raise RunFileError(f'{name}: "settings" must be an object of setting: value')
    flat = {}
    for key, value in settings.items():
        if not isinstance(value, str | int | float | bool):
            raise RunFileError(f"{name}: setting {key!r} has a value of the wrong type: {value!r}")
        flat[key] = format_value(value) if not isinstance(value, str) else value
    if "points" in doc and flat.get("dataset") == "custom":
        flat["custom_path"] = points.register(_embedded_points(doc["points"], name))
    path = flat.get("custom_path", "")
    if path and not points.is_point_set(path) and not allow_paths:
        raise RunFileError(
            f"{name} names a file for its data (custom_path={path!r}); a config opened "
            "here must carry its points instead (download one from the lab)"
        )
    try:
        config = Config.from_dict(flat)
    except ValueError as err:
        raise RunFileError(f"{name}: {err}") from None
    return config, preset


def _embedded_points(rows, name: str) -> np.ndarray:
    """A config file's points, by the same rules as a points file."""
    label = f'{name}\'s "points"'
    try:
        array = np.asarray(rows)
    except (ValueError, TypeError, OverflowError):
        array = np.empty(0, dtype=object)
    if array.dtype.hasobject:
        raise RunFileError(f"{label} must be a list of [x, y] pairs of numbers")
    try:
        return points.check_points(array, label)
    except points.PointsError as err:
        raise RunFileError(str(err)) from None


# ---------------------------------------------------------------------- weights files


def _template(config: Config):
    """Shapes and dtypes of one run's state (nothing is computed)."""
    init = make_train(config).init
    return jax.eval_shape(init, jax.random.PRNGKey(0), hparams_array(config))


def _named_leaves(tree) -> list[tuple[str, object]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(path), leaf) for path, leaf in flat]


def weights_npz(config: Config, state, preset: str | None = None) -> bytes:
    """One run's whole training state (not stacked) as the bytes of a ``.npz`` file,
    one array per pytree path, with the config it was trained with."""
    state = jax.device_get(state)
    expected = [(key, (s.shape, s.dtype)) for key, s in _named_leaves(_template(config))]
    arrays = {key: np.asarray(leaf) for key, leaf in _named_leaves(state)}
    if [(k, (a.shape, a.dtype)) for k, a in arrays.items()] != expected:
        raise ValueError("this state is not one run's state of this config (is it stacked?)")
    arrays["__config__"] = np.array(config_json(config, preset))
    arrays["__format__"] = np.array(WEIGHTS_FORMAT)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def state_from_npz(raw: bytes, config: Config, name: str = "the weights file"):
    """The training state in a weights file, for ``config`` (its data
    hyper-parameters replace the stored ones). ``RunFileError`` if the file is not
    one, or its arrays do not fit this config: naming the first misfit and the
    settings the weights were trained with that differ."""
    npz, stored_config = _open_weights(raw, name)
    with npz:
        template = _template(config)
        leaves = _read_leaves(npz, template, config, stored_config, name)
    state = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)
    return {**state, "hp": hparams_array(config)}


def run_from_npz(raw: bytes, name: str = "the weights file", allow_paths: bool = False):
    """(config, preset, state) of a weights file, with the config it was trained with
    (its embedded points registered; ``allow_paths`` as for ``config_from_json``)."""
    npz, stored_config = _open_weights(raw, name)
    npz.close()
    config, preset = config_from_json(stored_config, f"the config in {name}", allow_paths)
    return config, preset, state_from_npz(raw, config, name)


def file_kind(raw: bytes) -> str:
    """What an uploaded file is by its first bytes: "weights" (a zip: ``.npz``),
    "config" (a JSON object) or "points" (anything else: CSV or ``.npy``)."""
    if raw[:4] == b"PK\x03\x04":
        return "weights"
    head = bytes(raw[:64]).removeprefix(b"\xef\xbb\xbf").lstrip()
    return "config" if head.startswith(b"{") else "points"


def _open_weights(raw: bytes, name: str):
    """The open ``.npz`` of a weights file and the config text stored in it."""
    if len(raw) > MAX_WEIGHTS_BYTES:
        raise RunFileError(
            f"{name} is {len(raw):,} bytes, over the limit of {MAX_WEIGHTS_BYTES // 2**20} MB"
        )
    try:
        npz = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception:  # numpy, zipfile, zlib: any error means a damaged file
        raise RunFileError(f"{name} is not a .npz weights file") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise RunFileError(f"{name} is a single .npy array, not a .npz weights file")
    try:
        fmt = _stored_text(npz, "__format__", 64)
        stored_config = _stored_text(npz, "__config__", MAX_CONFIG_BYTES) or ""
    except Exception:  # numpy, zipfile, zlib: any error means a damaged file
        fmt = None
    if fmt != WEIGHTS_FORMAT:
        npz.close()
        raise RunFileError(f"{name} is not a gan2d weights file (format {fmt!r})")
    return npz, stored_config


def _stored_text(npz, key: str, max_chars: int) -> str | None:
    """The text array ``key`` of ``npz`` (None if absent), its size checked first."""
    if key not in npz.files:
        return None
    with npz.zip.open(key + ".npy") as member:
        shape, dtype = points.npy_header(member)
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * max_chars:
        raise ValueError(f"{key} is not a short text")
    return str(npz[key][()])


def _read_leaves(npz, template, config: Config, stored_config: str, name: str) -> list:
    """The template's arrays from ``npz``, each checked by its header before it is read."""

    def misfit(detail: str) -> RunFileError:
        differ = _static_difference(stored_config, config)
        return RunFileError(f"{name}: {differ + ' (' + detail + ')' if differ else detail}")

    named = _named_leaves(template)
    extra = sorted(set(npz.files) - {key for key, _ in named} - set(_META))
    leaves = []
    for key, spec in named:
        if key not in npz.files:
            raise misfit(f"it has no array {key}")
        try:
            with npz.zip.open(key + ".npy") as member:
                shape, dtype = points.npy_header(member)
        except Exception:  # numpy, zipfile, zlib: any error means a damaged file
            raise RunFileError(f"{name} is damaged: array {key} cannot be read") from None
        if shape != spec.shape or dtype != spec.dtype:
            raise misfit(
                f"its array {key} is {dtype}{list(shape)}, this config needs "
                f"{np.dtype(spec.dtype)}{list(spec.shape)}"
            )
        try:
            leaves.append(jnp.asarray(npz[key]))
        except Exception:  # numpy, zipfile, zlib: any error means a damaged file
            raise RunFileError(f"{name} is damaged: array {key} cannot be read") from None
    if extra:
        raise misfit(f"it has an array this config does not, {extra[0]}")
    return leaves


def _static_difference(stored_json: str, config: Config) -> str:
    """'these weights are for width=64; this config has width=128', or '' when the
    stored config cannot be read or does not differ in what fixes the state's shapes."""
    try:
        settings = json.loads(stored_json)["settings"]
        stored = replace(
            Config(),
            **{k: SPECS[k].parse(k, v) for k, v in settings.items() if k in SPECS},
        )
    except (ValueError, TypeError, KeyError, RecursionError):
        return ""
    names = [
        f.name
        for f in fields(Config)
        if is_static(f.name)
        and f.name != "custom_path"
        and getattr(stored.static_part(), f.name) != getattr(config.static_part(), f.name)
    ]
    if not names:
        return ""

    def shown(c: Config) -> str:
        return ", ".join(f"{n}={format_value(getattr(c, n))}" for n in names)

    return f"these weights are for {shown(stored)}; this config has {shown(config)}"


__all__ = [
    "EMBED_MAX",
    "MAX_CONFIG_BYTES",
    "RunFileError",
    "config_from_json",
    "config_json",
    "file_kind",
    "run_from_npz",
    "state_from_npz",
    "weights_npz",
]
