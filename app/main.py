"""`panel serve app`: one lab page per browser session."""

import panel as pn
from lab_view import build_page

pn.extension()
build_page().servable(title="gan2d lab")
