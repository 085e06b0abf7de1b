"""Why GANs are hard, in toy games small enough to solve by hand (plain numpy).

``games``: the xy game, Dirac-GAN, divergences of a shifted copy, KL fits.
``run``: ``python -m gan2d theory KIND --set key=value`` (one JSON line).
"""

from gan2d.theory.games import *  # noqa: F403
from gan2d.theory.games import __all__ as _games
from gan2d.theory.run import THEORY_KEYS, parse_theory_overrides, run_theory

__all__ = [*_games, "THEORY_KEYS", "parse_theory_overrides", "run_theory"]
