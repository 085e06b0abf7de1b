"""Pictures of a run for slides, rendered on the server from the arrays the app draws.

``render_png`` draws one frame as a 16:9 slide (the critic's map with the real and
generated points and the generator's push, the manifold, the curves); ``render_gif``
animates the kept frames of a run (critic's map and points, the step on each frame).
No browser: the PNG is drawn by matplotlib's Agg canvas (a ``Figure`` of its own, never
pyplot, so any thread may call it and no window opens), the GIF's frames straight into
palette images with numpy and Pillow (a few milliseconds each, one palette for all).
Both return the file's bytes.
"""

from __future__ import annotations

import io
import threading
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from PIL import Image, ImageDraw, ImageFont

from gan2d.ui.plots import grid_arrows, manifold_lines
from gan2d.ui.session import Frame
from gan2d.ui.style import (
    ARROW_COLOUR,
    CRITIC_PALETTE,
    D_COLOUR,
    EXACT_W1_COLOUR,
    FAKE,
    G_COLOUR,
    HQ_COLOUR,
    MANIFOLD_COLS,
    MANIFOLD_ROWS,
    MODES_COLOUR,
    REAL,
    SLICED_W1_COLOUR,
    centred_critic,
    critic_range,
    critic_scale,
)

NO_FRAMES = "no frames to export yet: press Play first"
TEXT_COLOUR = "#212529"

SLIDE_INCHES = (12.8, 7.2)  # 1920 x 1080 px at 150 dpi
TITLE_PT, LABEL_PT, TICK_PT, LEGEND_PT = 15, 12, 10.5, 10
# Each slide has a Figure and an Agg canvas of its own, but matplotlib's font and text
# caches are shared between threads: one slide at a time (each takes under a second).
_DRAW_LOCK = threading.Lock()


# ---------------------------------------------------------------------- the slide
def render_png(
    frame: Frame,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str = "",
    dpi: int = 150,
) -> bytes:
    """A 16:9 PNG of ``frame`` (1920 x 1080 px at the default ``dpi``): the critic's map
    with real and generated points, the generator's push and a colour bar; the manifold;
    and a column of curve plots from ``curves`` (name -> (steps, values); any of
    d_loss, g_loss, d_grad, g_grad, modes, hq (percent), sliced_w1, w1; missing or empty
    ones are left out)."""
    if frame is None:
        raise ValueError(NO_FRAMES)
    with _DRAW_LOCK:
        return _slide(frame, curves, title, dpi)


def _slide(frame: Frame, curves: dict, title: str, dpi: int) -> bytes:
    fig = Figure(figsize=SLIDE_INCHES, dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    width, height = SLIDE_INCHES

    def axes_at(x, y, w, h):  # a rectangle in inches from the bottom left
        return fig.add_axes((x / width, y / height, w / width, h / height))

    if title:
        fig.text(0.3 / width, 1 - 0.32 / height, title, fontsize=18, weight="bold",
                 color=TEXT_COLOUR, va="center")  # fmt: skip
    _critic_panel(fig, axes_at(0.3, 1.05, 5.3, 5.3), axes_at(0.3, 0.62, 5.3, 0.13), frame)
    _manifold_panel(axes_at(5.95, 3.65, 2.7, 2.7), frame)
    fig.text(5.95 / width, 3.15 / height, _summary(frame), fontsize=LABEL_PT,
             color=TEXT_COLOUR, va="top", linespacing=1.6)  # fmt: skip
    plots = _curve_plots(curves, frame)
    if plots:
        top, bottom, gap = 6.35, 0.6, 0.6
        h = (top - bottom - gap * (len(plots) - 1)) / len(plots)
        for i, draw in enumerate(plots):
            ax = axes_at(9.35, top - (i + 1) * h - i * gap, 2.85, h)
            draw(ax)
            _style_axes(ax)
            if i == len(plots) - 1:
                ax.set_xlabel("step", fontsize=LABEL_PT)
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()


def _critic_panel(fig: Figure, ax, bar_ax, frame: Frame) -> None:
    snap, e, loss = frame.snap, frame.extent, frame.config.loss
    critic = centred_critic(snap["critic"], loss)
    lo, hi = critic_range(critic, loss, None)
    # grid values sit on the corners of [-e, e]^2: each pixel is centred on its sample
    half = e / max(critic.shape[0] - 1, 1)
    image = ax.imshow(
        critic, origin="lower", extent=(-e - half, e + half, -e - half, e + half),
        cmap=_critic_colormap(), vmin=lo, vmax=hi, interpolation="nearest",
    )  # fmt: skip
    real, fake = _finite(snap["real"]), _finite(snap["fake"])
    ax.scatter(real[:, 0], real[:, 1], s=5, marker="s", c=REAL, alpha=0.6, linewidths=0)
    ax.add_collection(
        LineCollection(grid_arrows(snap, e), colors=ARROW_COLOUR, alpha=0.75, linewidths=1.2)
    )
    ax.scatter(fake[:, 0], fake[:, 1], s=14, marker="o", c=FAKE, linewidths=0)
    ax.set_xlim(-e, e)
    ax.set_ylim(-e, e)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"Critic's map · step {frame.step:,}", fontsize=TITLE_PT + 2, loc="left")
    ax.legend(
        handles=[
            Line2D([], [], ls="", marker="s", ms=5, color=REAL, label="real"),
            Line2D([], [], ls="", marker="o", ms=6, color=FAKE, label="generated"),
            Line2D([], [], color=ARROW_COLOUR, lw=1.5, label="G's push"),
        ],
        loc="upper left", fontsize=LEGEND_PT, framealpha=0.85,
    )  # fmt: skip
    bar = fig.colorbar(image, cax=bar_ax, orientation="horizontal")
    bar.set_label(critic_scale(loss)[0], fontsize=LABEL_PT)
    bar.ax.tick_params(labelsize=TICK_PT)


def _manifold_panel(ax, frame: Frame) -> None:
    snap, e = frame.snap, frame.extent
    real = _finite(snap["real"])
    ax.scatter(real[:, 0], real[:, 1], s=4, marker="s", c=REAL, alpha=0.25, linewidths=0)
    lines = manifold_lines(snap["manifold"], frame.config.z_dim == 1)
    ax.plot(lines["rx"], lines["ry"], color=MANIFOLD_ROWS, lw=1.2)
    if len(lines["cx"]):
        ax.plot(lines["cx"], lines["cy"], color=MANIFOLD_COLS, lw=1.2)
    ax.set_xlim(-e, e)
    ax.set_ylim(-e, e)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    what = "line" if frame.config.z_dim == 1 else "grid"
    ax.set_title(f"Manifold: G(latent {what})", fontsize=TITLE_PT - 2, loc="left")


def _summary(frame: Frame) -> str:
    c, snap = frame.config, frame.snap
    lines = [
        f"data {c.dataset} · loss {c.loss}",
        f"G, D: {c.depth} × {c.width} units · z_dim {c.z_dim}",
        f"lr G {c.lr_g:g} · lr D {c.lr_d:g} · batch {c.batch_size}",
        f"sliced W1 {float(snap['sliced_w1']):.3f}" if "sliced_w1" in snap else "",
    ]
    if "live_modes" in snap:
        n_modes = len(snap["live_mode_counts"])
        lines.append(
            f"modes {int(snap['live_modes'])}/{n_modes} · HQ {float(snap['live_hq']):.0f}%"
        )
    return "\n".join(line for line in lines if line)


def _curve(curves: dict, name: str):
    """(steps, values) with the non-finite points dropped, or None when there are none."""
    if name not in curves or curves[name] is None:
        return None
    steps, values = (np.asarray(a, np.float64).ravel() for a in curves[name])
    n = min(len(steps), len(values))
    steps, values = steps[:n], values[:n]
    ok = np.isfinite(steps) & np.isfinite(values)
    return (steps[ok], values[ok]) if ok.any() else None


def _curve_plots(curves: dict, frame: Frame) -> list:
    """One drawing function per curve plot that has data, in the app's order."""
    plots = []
    d_loss, g_loss = _curve(curves, "d_loss"), _curve(curves, "g_loss")
    if d_loss or g_loss:

        def losses(ax):
            _lines(ax, [(d_loss, "D", D_COLOUR, 2), (g_loss, "G", G_COLOUR, 2)])
            ax.set_title("Losses", fontsize=TITLE_PT - 2, loc="left")
            ax.set_ylabel("loss", fontsize=LABEL_PT)

        plots.append(losses)
    d_grad, g_grad = _curve(curves, "d_grad"), _curve(curves, "g_grad")
    if d_grad or g_grad:

        def grads(ax):
            d, g = (c and (c[0], np.maximum(c[1], 1e-12)) for c in (d_grad, g_grad))
            _lines(ax, [(d, "D", D_COLOUR, 2), (g, "G", G_COLOUR, 2)])
            ax.set_yscale("log")
            _log_ticks(ax, [c[1] for c in (d, g) if c])
            ax.set_title("Gradient norms", fontsize=TITLE_PT - 2, loc="left")
            ax.set_ylabel("‖∇‖", fontsize=LABEL_PT)

        plots.append(grads)
    modes, hq = _curve(curves, "modes"), _curve(curves, "hq")
    if "live_modes" in frame.snap and (modes or hq):
        n_modes = len(frame.snap["live_mode_counts"])

        def mode_plot(ax):
            handles = _lines(ax, [(modes, "modes", MODES_COLOUR, 2)], legend=False)
            ax.set_ylim(0, n_modes + 0.5)
            ax.set_ylabel("modes", fontsize=LABEL_PT)
            twin = ax.twinx()
            handles += _lines(twin, [(hq, "HQ %", HQ_COLOUR, 2)], legend=False)
            twin.set_ylim(0, 100)
            twin.set_ylabel("HQ %", fontsize=LABEL_PT)
            twin.tick_params(labelsize=TICK_PT)
            ax.set_title("Modes", fontsize=TITLE_PT - 2, loc="left")
            _legend(ax, handles)

        plots.append(mode_plot)
    sliced, exact = _curve(curves, "sliced_w1"), _curve(curves, "w1")
    if sliced or exact:

        def w1(ax):
            _lines(
                ax,
                [(sliced, "sliced", SLICED_W1_COLOUR, 1.5), (exact, "exact", EXACT_W1_COLOUR, 2.5)],
                marker_if_few=True,
            )
            ax.set_title("Wasserstein-1", fontsize=TITLE_PT - 2, loc="left")
            ax.set_ylabel("W1", fontsize=LABEL_PT)

        plots.append(w1)
    return plots


def _lines(ax, series, legend: bool = True, marker_if_few: bool = False) -> list:
    """Plot each (curve, label, colour, width) that has data; the handles drawn."""
    handles = []
    for curve, label, colour, width in series:
        if curve is None:
            continue
        marker = "o" if marker_if_few and len(curve[0]) < 30 else None
        (line,) = ax.plot(*curve, color=colour, lw=width, label=label, marker=marker, ms=4)
        handles.append(line)
    if legend and handles:
        _legend(ax, handles)
    return handles


def _legend(ax, handles) -> None:
    """A one-line legend above the plot's right corner, clear of the curves."""
    ax.legend(
        handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=len(handles),
        frameon=False, fontsize=LEGEND_PT, borderaxespad=0.1, handlelength=1.3,
        columnspacing=0.9, handletextpad=0.4,
    )  # fmt: skip


def _log_ticks(ax, values: list[np.ndarray]) -> None:
    """Plain tick labels on a log axis: 1, 2 and 5 per decade when the curves span
    less than two decades (else only powers of ten), no crowded minor labels."""
    both = np.concatenate(values)
    decades = np.log10(both.max() / both.min()) if both.size else 0.0
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2 else (1.0,)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _style_axes(ax) -> None:
    ax.tick_params(labelsize=TICK_PT)
    ax.grid(True, color="#e9ecef", lw=0.8)
    ax.set_axisbelow(True)


@lru_cache(maxsize=1)
def _critic_colormap() -> ListedColormap:
    return ListedColormap(CRITIC_PALETTE, name="gan2d_critic")


def _finite(points) -> np.ndarray:
    points = np.asarray(points, np.float32).reshape(-1, 2)
    return points[np.isfinite(points).all(axis=1)]


# ---------------------------------------------------------------------- the animation
# One palette for every frame: the critic's colours, then the points' and the text's.
# Few levels: every frame's map changes nearly everywhere, so a GIF's size is about
# frames x the size of one; 24 levels (not 248) keep 150 frames near 2.5 MB, and the
# pale palette shows no more than that on a projector.
LEVELS = 24
_REAL_I, _FAKE_I, _WHITE_I, _TEXT_I, _NAN_I = range(LEVELS, LEVELS + 5)


def render_gif(
    frames: list[Frame], *, max_frames: int = 150, size_px: int = 480, fps: int = 10
) -> bytes:
    """An animated GIF of ``frames`` (the critic's map, real and generated points, the
    step), thinned evenly to at most ``max_frames`` (the first and last always kept),
    ``size_px`` square, looping; the last frame is held a little longer. Every frame uses
    the colour range the app ends on (fixed for bounded losses), so a colour means the
    same thing throughout; each frame is drawn over its own view extent."""
    if not frames:
        raise ValueError(NO_FRAMES)
    if max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")
    if size_px < 32 or fps < 1:
        raise ValueError(f"size_px must be at least 32 and fps at least 1: {size_px}, {fps}")
    kept = [frames[i] for i in thinned(len(frames), max_frames)]
    limits = _gif_range(kept)
    font = _font(max(12, size_px // 22))
    images = [_gif_frame(f, limits, size_px, font) for f in kept]
    step_ms = int(round(1000 / fps))
    durations = [step_ms] * len(images)
    durations[-1] = max(step_ms, 1500)
    buffer = io.BytesIO()
    # optimize=False: Pillow's optimize gives each frame a palette of its own, which
    # made these files larger and slower to write (the shared palette is already small)
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:],
        duration=durations, loop=0, optimize=False,
    )  # fmt: skip
    return buffer.getvalue()


def thinned(n: int, max_frames: int) -> list[int]:
    """At most ``max_frames`` indices of ``n`` spread evenly, first and last included."""
    if n <= max_frames:
        return list(range(n))
    return sorted(set(np.round(np.linspace(0, n - 1, max_frames)).astype(int).tolist()))


def _gif_range(frames: list[Frame]) -> tuple[float, float]:
    """The colour range the app would show at the last frame: its loss's fixed range, or
    a Wasserstein critic's range grown (never shrunk) over the frames of its scale."""
    last = frames[-1]
    loss = last.config.loss
    limits = None
    for frame in frames:
        if frame.scale_id == last.scale_id:
            limits = critic_range(centred_critic(frame.snap["critic"], loss), loss, limits)
    return limits


@lru_cache(maxsize=1)
def _gif_palette() -> list[int]:
    at = np.round(np.linspace(0, len(CRITIC_PALETTE) - 1, LEVELS)).astype(int)
    colours = [CRITIC_PALETTE[i] for i in at] + [REAL, FAKE, "#ffffff", TEXT_COLOUR, "#adb5bd"]
    colours += ["#ffffff"] * (256 - len(colours))
    return [int(c[i : i + 2], 16) for c in colours for i in (1, 3, 5)]


@lru_cache(maxsize=4)
def _font(size: int):
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:
        return ImageFont.load_default()


@lru_cache(maxsize=8)
def _upscale_index(grid: int, size: int) -> np.ndarray:
    """For each pixel of a ``size`` row or column, the nearest of ``grid`` samples that
    span the view from edge to edge (the same for every extent)."""
    at = (np.arange(size) + 0.5) * (grid - 1) / size
    return np.clip(np.round(at), 0, grid - 1).astype(np.intp)


def _stamp(radius: float) -> tuple[np.ndarray, np.ndarray]:
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dx**2 + dy**2 <= radius**2 + 0.25
    return dy[inside], dx[inside]


def _dot(pixels: np.ndarray, points, extent: float, index: int, stamp) -> None:
    """Paint each point as the ``stamp``'s pixels around it (points outside are left)."""
    size = pixels.shape[0]
    p = _finite(points)
    p = p[(np.abs(p) <= 1.01 * extent).all(axis=1)]
    col = np.floor((p[:, 0] + extent) / (2 * extent) * size).astype(np.intp)
    row = np.floor((extent - p[:, 1]) / (2 * extent) * size).astype(np.intp)
    dy, dx = stamp
    rows, cols = (row[:, None] + dy[None, :]).ravel(), (col[:, None] + dx[None, :]).ravel()
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    pixels[rows[inside], cols[inside]] = index


def _gif_frame(frame: Frame, limits, size: int, font) -> Image.Image:
    snap, e = frame.snap, frame.extent
    lo, hi = limits
    critic = centred_critic(snap["critic"], frame.config.loss)
    with np.errstate(invalid="ignore"):
        t = np.clip((critic - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    levels = np.where(np.isfinite(t), np.round(np.nan_to_num(t) * (LEVELS - 1)), _NAN_I)
    at = _upscale_index(critic.shape[0], size)
    pixels = levels.astype(np.uint8)[at[::-1, None], at[None, :]]  # image rows from the top
    _dot(pixels, snap["real"], e, _REAL_I, _stamp(max(0.5, size / 480)))
    _dot(pixels, snap["fake"], e, _FAKE_I, _stamp(max(1.0, 2.2 * size / 480)))
    image = Image.frombytes("P", (size, size), np.ascontiguousarray(pixels).tobytes())
    image.putpalette(_gif_palette())
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"  # palette pixels: no blending with the map under the text
    text = f"step {frame.step:,}"
    pad = max(3, size // 80)
    left, top, right, bottom = draw.textbbox((2 * pad, 2 * pad), text, font=font)
    draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=_WHITE_I)
    draw.text((2 * pad, 2 * pad), text, fill=_TEXT_I, font=font)
    return image
