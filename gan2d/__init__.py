"""gan2d: watch small GANs train on 2D toy distributions.

The core (this package) is pure JAX and never imports the UI; the Panel app lives in
``app/`` and is started with ``panel serve app``.
"""

from gan2d.config import PRESETS, Config, get_preset
from gan2d.train import make_train, train_run

__all__ = ["PRESETS", "Config", "get_preset", "make_train", "train_run"]
__version__ = "0.1.0"
