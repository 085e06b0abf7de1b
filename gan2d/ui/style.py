"""One look for every tab: colours, the critic's palette and scale, fonts, page CSS.

Real points are near-black squares and generated points orange dots on every tab; the
critic's map runs from pale purple (looks fake) through white to pale green (looks
real), as in GAN Lab. Runs side by side get the colours of ``RUN_COLOURS``.
"""

from __future__ import annotations

import numpy as np

from gan2d.core.config import LOG_LOSSES

REAL = "#1b1b1b"
FAKE = "#e8590c"
D_COLOUR = "#1c7ed6"
G_COLOUR = "#e8590c"
MODES_COLOUR = "#2b8a3e"
HQ_COLOUR = "#862e9c"
MANIFOLD_ROWS = "#5f3dc4"
MANIFOLD_COLS = "#0c8599"
ARROW_COLOUR = "#495057"
SLICED_W1_COLOUR = "#868e96"
EXACT_W1_COLOUR = "#212529"
#: one colour per run in the Compare tab's charts (its maps keep REAL / FAKE points)
RUN_COLOURS = ("#e8590c", "#1c7ed6", "#2b8a3e", "#862e9c")
#: one colour per generator of a mixture (the first is FAKE, a single generator's)
GENERATOR_COLOURS = (
    "#e8590c", "#1c7ed6", "#2b8a3e", "#ae3ec9", "#f59f00", "#0c8599", "#e64980", "#5c940d",
)  # fmt: skip
FONT = "13pt"
TICK_FONT = "11pt"
BACKGROUND = "#fbfbfd"
OUTLINE = "#dee2e6"


def blend(stops: list[str], n: int = 256) -> tuple[str, ...]:
    """``n`` colours interpolated linearly between hex ``stops``."""
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in stops], float)
    at = np.linspace(0, len(stops) - 1, n)
    lo = np.minimum(at.astype(int), len(stops) - 2)
    frac = (at - lo)[:, None]
    mixed = rgb[lo] * (1 - frac) + rgb[lo + 1] * frac
    return tuple("#" + "".join(f"{int(round(v)):02x}" for v in row) for row in mixed)


# Pale so that the points and arrows on top stay readable.
CRITIC_PALETTE = blend(["#b197fc", "#e5dbff", "#ffffff", "#d3f9d8", "#8ce99a"])
#: a sequential palette for heat maps of a metric (low pale, high green; dark text reads)
METRIC_PALETTE = blend(["#f8f9fa", "#d3f9d8", "#8ce99a", "#51cf66"])


def critic_scale(loss: str) -> tuple[str, tuple[float, float] | None]:
    """(colour-bar title, fixed range or None when the range is set per run)."""
    if loss in LOG_LOSSES:
        return "D(x) = P(real)", (0.0, 1.0)
    if loss == "lsgan":
        return "D(x), targets: real 1, fake 0", (-0.5, 1.5)
    if loss == "hinge":
        return "critic score (margins at ±1)", (-2.0, 2.0)
    return "critic score − its mean (a W-critic is defined up to a constant)", None


def centred_critic(critic: np.ndarray, loss: str) -> np.ndarray:
    """The critic grid as drawn: a Wasserstein critic is shifted to mean 0."""
    critic = np.asarray(critic, np.float32)
    if critic_scale(loss)[1] is None:
        finite = critic[np.isfinite(critic)]
        critic = critic - (finite.mean() if finite.size else 0.0)
    return critic


def critic_range(critic: np.ndarray, loss: str, old: tuple[float, float] | None):
    """The colour range for a (centred) critic grid: fixed for bounded losses; for a
    Wasserstein critic, set from the data once per run and only widened (never
    narrowed) when the critic outgrows it, so a colour keeps its meaning."""
    fixed = critic_scale(loss)[1]
    if fixed is not None:
        return fixed
    finite = critic[np.isfinite(critic)]
    half = float(np.percentile(np.abs(finite), 98)) if finite.size else 1.0
    half = max(half * 1.25, 1e-3)
    if old is not None and half <= old[1] * 1.5:
        return old
    return (-half, half)


def style_figure(fig, title_size: str = FONT):
    """The common look of a figure: fonts, no toolbar or logo, pale background."""
    fig.title.text_font_size = title_size
    fig.xaxis.major_label_text_font_size = TICK_FONT
    fig.yaxis.major_label_text_font_size = TICK_FONT
    fig.toolbar.logo = None
    fig.toolbar_location = None
    fig.background_fill_color = BACKGROUND
    fig.border_fill_color = "white"
    fig.outline_line_color = OUTLINE
    return fig


#: the presenter view's readout: readable from the back of a room
PRESENT_CSS = """
.gan2d-readout { font-size: 2em; }
"""
#: page CSS shared by every tab (the readout line, status lines, select boxes)
CSS = """
.gan2d-readout { font-size: 1.3em; font-variant-numeric: tabular-nums; color: #212529;
                 white-space: nowrap; }
.gan2d-readout b { font-size: 1.25em; }
.gan2d-readout .sep { color: #adb5bd; padding: 0 0.45em; }
.gan2d-status { font-size: 1.05em; color: #343a40; }
"""
HEADER_STYLE = {
    "background": "#f1f3f5",
    "border-bottom": "3px solid #e8590c",
    "border-radius": "6px",
    "padding": "2px 12px",
}
#: width of every tab's sidebar of controls (room for the longest choice in a select)
SIDEBAR_WIDTH = 300
