"""How long a user waits for compiled programs, cold and warm, in a real browser.

Starts `panel serve app` with an empty compile cache folder (cold), then again with the
folder the first server filled (warm: what a restarted server, or a second server on
the same machine, finds), and in each measures, in headless Chromium:

- ``first_frame_s``: page opened -> first frame painted (the default preset);
- ``preset_switch_s``: another preset chosen (``unrolled``: new programs) -> the
  first frame painted with it;
- ``compare_first_frame_s``: the Compare tab's Play pressed (three runs, three
  programs) -> its first frame shown.

    python benchmarks/compile_times.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import time

from gan2d.ui.browser import AppServer, chromium_missing, launch_chromium

LOAD_MS = 300_000


def measure(cache_dir: str) -> dict:
    from playwright.sync_api import sync_playwright

    # the server starts compiling the default preset at once; the clock starts when
    # the page is opened, as a student's would
    server = AppServer(env={"GAN2D_COMPILE_CACHE": cache_dir})
    try:
        server.wait_ready()
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            t0 = time.perf_counter()
            page.goto(server.url, timeout=LOAD_MS)
            page.wait_for_function("window.gan2d && window.gan2d.frames > 0", timeout=LOAD_MS)
            first_frame = time.perf_counter() - t0

            before = page.evaluate("window.gan2d.version")
            t0 = time.perf_counter()
            page.get_by_label("Preset").select_option("unrolled")
            page.wait_for_function(
                f"Object.keys(window.gan2d.versionPaint).some(v => +v > {before})",
                timeout=LOAD_MS,
            )
            preset_switch = time.perf_counter() - t0

            page.locator(".bk-tab", has_text="Compare").click()
            play = page.get_by_role("button", name="Play").first
            play.wait_for(timeout=LOAD_MS)
            t0 = time.perf_counter()
            play.click()
            page.get_by_text(re.compile(r"step [1-9][0-9,]* · 3 runs")).wait_for(timeout=LOAD_MS)
            compare_first = time.perf_counter() - t0
            browser.close()
        tracebacks = server.output().count("Traceback")
    finally:
        server.stop()
    return {
        "first_frame_s": round(first_frame, 2),
        "preset_switch_s": round(preset_switch, 2),
        "compare_first_frame_s": round(compare_first, 2),
        "server_tracebacks": tracebacks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    missing = chromium_missing()
    if missing:
        raise SystemExit(missing)
    with tempfile.TemporaryDirectory(prefix="gan2d-cache-") as cache:
        result = {
            "cold": measure(cache),
            "warm": measure(cache),
            "cache_files": len(os.listdir(cache)),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
