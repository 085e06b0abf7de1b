"""What building one visitor's page costs the server, with and without the other tabs.

    python benchmarks/page_build.py [--repeat 7]

Builds the page as ``panel serve app`` does for each session (``gan2d.ui.build_page``
and its Bokeh models), ``--repeat`` times in one process after one warm-up build, and
then the same page with the Theory, Compare and Sweep tabs shown once each (what a page
cost when every tab was built up front). Prints one JSON line: the median seconds of
each, and the machine (as ``python -m gan2d bench`` reports it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import panel as pn
from bokeh.document import Document

from gan2d.bench.speed import machine
from gan2d.ui import build_page


def build(all_tabs: bool) -> float:
    t0 = time.perf_counter()
    page = build_page()
    _, tabs = page
    if all_tabs:
        for i in range(1, len(tabs)):
            tabs.active = i
        tabs.active = 0
    page.get_root(Document())
    return time.perf_counter() - t0  # (a lab's run is made on connect: none here)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    pn.extension()
    build(True)  # imports, first figures
    out = {}
    for all_tabs in (False, True):
        times = [build(all_tabs) for _ in range(args.repeat)]
        out["every_tab_s" if all_tabs else "lab_tab_s"] = round(statistics.median(times), 3)
    out["machine"] = machine()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
