"""The lab in a notebook: the cell from the README runs in a real Jupyter kernel
(nbclient), renders as a Panel object, trains when told to play, and draws its frames."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

SHOW = """\
import panel as pn
pn.extension()
from gan2d.ui import Lab
lab = Lab({"preset": "ns-gan", "width": "32", "depth": "1"})
lab"""

PLAY = """\
import asyncio, time
lab.play()
t0 = time.monotonic()
while lab.shown_step < 30 and time.monotonic() - t0 < 180:
    await asyncio.sleep(0.05)  # the kernel's loop runs the lab's timer meanwhile
lab.pause()
print("step", lab.shown_step, "points drawn", len(lab.plots.fake_src.data["x"]))"""


def test_the_lab_renders_and_trains_in_a_kernel():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (SHOW, PLAY)])
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    shown, played = nb.cells
    bundles = [o for o in shown.outputs if o["output_type"] == "execute_result"]
    assert bundles and "application/vnd.holoviews_exec.v0+json" in bundles[0]["data"]
    warnings = [o.get("text", "") for o in shown.outputs if o["output_type"] == "stream"]
    assert not any("may not render" in w for w in warnings), warnings
    (printed,) = [o["text"] for o in played.outputs if o["output_type"] == "stream"]
    _, step, _, _, drawn = printed.split()
    assert int(step) >= 30 and int(drawn) > 0
