"""`panel serve app`: the gan2d page, one per browser session (see gan2d.ui.page)."""

import panel as pn

from gan2d.ui import build_page

pn.extension("filedropper")  # the lab's upload box
build_page().servable(title="gan2d lab")
