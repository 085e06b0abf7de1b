"""How far each preset gets in the app in its first 20 seconds of Play, at its own speed.

    python benchmarks/preset_speeds.py [--seconds 20] [--only NAME]...

Starts ``panel serve app`` and, for each preset, opens ``/app?preset=NAME`` in headless
Chromium (1600 x 1000), presses Play, and after ``--seconds`` reads the step the page
shows and the live readout (modes and HQ where the data has modes). Prints a Markdown
row per preset: its speed, its length, the step reached, the share of its length, and
the readout. A compile on first Play counts, as it does for a user (programs already in
the persistent compile cache load instead).
"""

from __future__ import annotations

import argparse
import re
import time

from playwright.sync_api import sync_playwright

from gan2d.presets import PRESETS
from gan2d.ui.browser import AppServer, launch_chromium

LOAD_MS = 180_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", action="append")
    args = parser.parse_args()
    server = AppServer()
    print(f"| preset | speed | length | step after {args.seconds:g} s | of its length | readout |")
    print("|---|---|---|---|---|---|")
    try:
        server.wait_ready()
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            for name in args.only or PRESETS:
                preset = PRESETS[name]
                context = browser.new_context(viewport={"width": 1600, "height": 1000})
                page = context.new_page()
                page.goto(f"{server.url}?preset={name}", timeout=LOAD_MS)
                page.wait_for_function("window.gan2d && window.gan2d.frames > 0", timeout=LOAD_MS)
                page.get_by_role("button", name="Play").click()
                end = time.monotonic() + args.seconds
                page.wait_for_timeout(max(0.0, end - time.monotonic()) * 1000)  # the window
                step = int(page.evaluate("window.gan2d.step"))
                readout = page.locator(".gan2d-readout").first.inner_text()
                context.close()
                shown = ", ".join(
                    p.strip() for p in readout.split("|") if re.search(r"modes|HQ|W1", p)
                )
                share = f"{100 * step / preset.steps:.0f}%"
                print(
                    f"| `{name}` | {preset.speed} | {preset.steps:,} | {step:,} | {share} "
                    f"| {shown} |",
                    flush=True,
                )
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
