"""Frame rate of the live lab in a real browser.

Starts `panel serve app`, opens the default preset in headless Chromium with every plot
shown, presses Play and measures:

- time from Play to the first frame showing all 8 modes covered (live metric);
- frames painted per second (the page counts a frame after the paint that shows it);
- control-to-frame latency: the critic's learning rate slider is moved once a second
  (1e-3 <-> 2e-3, as a drag would), and the time from the change to the first painted
  frame computed with the new setting is recorded (p50 / p90);
- the server's resident memory at start and end, sampled every 10 s.

    python benchmarks/framerate.py --duration 60          # short run
    python benchmarks/framerate.py --duration 600 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from gan2d.ui.browser import AppServer, chromium_missing, launch_chromium, rss_mb

FIND_LR_D = """
(() => {
  for (const c of Bokeh.documents[0].all_models) {
    if (!c.children || c.children.length !== 2) continue;
    const [div, slider] = c.children;
    if (div.type === 'Div' && slider.type === 'Slider' && div.text.startsWith('lr d:'))
      return true;
  }
  return false;
})()
"""

NUDGE_LR_D = """
(up) => {
  for (const c of Bokeh.documents[0].all_models) {
    if (!c.children || c.children.length !== 2) continue;
    const [div, slider] = c.children;
    if (div.type === 'Div' && slider.type === 'Slider' && div.text.startsWith('lr d:')) {
      const before = window.gan2d.version;
      const t0 = performance.now();
      slider.value = slider.value + (up ? 1 : -1);
      return [before, t0];
    }
  }
  return null;
}
"""


def percentile(values, q) -> float | None:
    return float(np.percentile(values, q)) if values else None


#: the speed every figure of the README's frame-rate table was measured at (5 steps per
#: frame; the default preset's own speed is 20)
SPEED_QUERY = "?speed=5"


def run(duration: float, modes_timeout: float, screenshot: Path | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    server = AppServer()
    result: dict = {}
    try:
        server.wait_ready()
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(server.url + SPEED_QUERY)
            page.wait_for_function("window.Bokeh && Bokeh.documents.length > 0", timeout=180_000)
            page.wait_for_function("window.gan2d && window.gan2d.frames > 0", timeout=180_000)
            assert page.evaluate(FIND_LR_D), "lr_d slider not found"
            memory = [(0.0, rss_mb(server.pid))]

            # phase 1: press Play and wait for all 8 modes (no control changes)
            t_play = time.perf_counter()
            page.get_by_role("button", name="Play").click()
            page.wait_for_function("window.gan2d.step > 0", timeout=120_000)
            frames0 = page.evaluate("window.gan2d.frames")
            t_frames0 = time.perf_counter()
            t_modes = None
            while time.perf_counter() - t_play < modes_timeout:
                text = page.locator(".gan2d-readout").first.inner_text()
                if "modes 8/8" in text.replace("\n", " "):
                    t_modes = time.perf_counter() - t_play
                    break
                time.sleep(0.2)
            step_modes = page.evaluate("window.gan2d.step")
            if screenshot is not None:
                page.screenshot(path=str(screenshot))

            # phase 2: a control change every second
            latencies, up = [], True
            t_start = time.perf_counter()
            next_mem = 10.0
            while time.perf_counter() - t_start < duration:
                before, t0 = page.evaluate(NUDGE_LR_D, up)
                up = not up
                try:
                    page.wait_for_function(
                        f"Object.keys(window.gan2d.versionPaint).some(v => +v > {before})",
                        timeout=10_000,
                    )
                    painted = page.evaluate(
                        f"""Math.min(...Object.entries(window.gan2d.versionPaint)
                            .filter(([v, t]) => +v > {before}).map(([v, t]) => t))"""
                    )
                    latencies.append(painted - t0)
                except Exception:
                    latencies.append(float("inf"))
                elapsed = time.perf_counter() - t_start
                if elapsed >= next_mem:
                    memory.append((round(elapsed, 1), rss_mb(server.pid)))
                    next_mem += 10.0
                time.sleep(max(0.0, 1.0 - (time.perf_counter() - t_start) % 1.0))
            frames1 = page.evaluate("window.gan2d.frames")
            t_frames1 = time.perf_counter()
            steps = page.evaluate("window.gan2d.step")
            memory.append((round(time.perf_counter() - t_start, 1), rss_mb(server.pid)))
            page.get_by_role("button", name="Pause").click()
            browser.close()

        finite = [x for x in latencies if np.isfinite(x)]
        result = {
            "frames_per_s": (frames1 - frames0) / (t_frames1 - t_frames0),
            "steps_per_s": steps / (t_frames1 - t_play),
            "seconds_to_8_modes": t_modes,
            "step_at_8_modes": step_modes if t_modes else None,
            "control_to_frame_ms_p50": percentile(finite, 50),
            "control_to_frame_ms_p90": percentile(finite, 90),
            "control_changes": len(latencies),
            "changes_without_frame": len(latencies) - len(finite),
            "server_rss_mb_start": memory[0][1],
            "server_rss_mb_end": memory[-1][1],
            "server_rss_mb_samples": memory,
            "duration_s": duration,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average at end {os.getloadavg()[0]:.1f}",
        }
        result["server_tracebacks"] = server.output().count("Traceback")
    finally:
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of phase 2")
    parser.add_argument(
        "--modes-timeout", type=float, default=120.0, help="give up waiting for 8 modes"
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--screenshot", type=Path, help="save the page once 8 modes show")
    args = parser.parse_args()
    missing = chromium_missing()
    if missing:
        raise SystemExit(missing)
    result = run(args.duration, args.modes_timeout, args.screenshot)
    for key, value in result.items():
        if key != "server_rss_mb_samples":
            print(f"{key:28s} {value}")
    print(
        "server_rss_mb_samples        "
        + ", ".join(f"{t}s:{m:.0f}" for t, m in result["server_rss_mb_samples"])
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
