"""The Panel app: views on top of the core (which never imports this package).

- ``lab``: the lab (``Lab``), its controls made from ``settings``, its ``plots``;
- ``session``: a lab's run, trained by the process-wide ``scheduler``;
- ``compare``, ``sweep``, ``theory``: the other tabs;
- ``transport``, ``notice``, ``style``, ``clock``: the pieces every tab shares;
- ``page``: the whole page and the server hook that ``panel serve app`` uses;
- ``browser``: a served app and headless Chromium, for tests and benchmarks.

In a notebook: ``import panel as pn; pn.extension(); from gan2d.ui import Lab; Lab()``.
"""

from gan2d.ui.lab import Lab
from gan2d.ui.page import build_page

__all__ = ["Lab", "build_page"]
