"""gan2d: watch small GANs train on 2D toy distributions.

``gan2d.core`` trains (pure JAX, never imports the UI); ``gan2d.presets`` names
starting points; ``gan2d.theory`` solves toy games by hand; ``gan2d.ui`` is the Panel
app that ``panel serve app`` assembles; ``gan2d.bench`` measures speed.
"""

from gan2d.core.config import Config
from gan2d.core.runs import Runs, train_run
from gan2d.core.train import make_train
from gan2d.presets import PRESETS, get_preset

__all__ = ["PRESETS", "Config", "Runs", "get_preset", "make_train", "train_run"]
__version__ = "0.1.0"
