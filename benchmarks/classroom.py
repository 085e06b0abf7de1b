"""A class on one server: N students training at once, or M students following one run.

    python benchmarks/classroom.py --sessions 8 [--seconds 60] [--json]
    python benchmarks/classroom.py --sessions 1 --followers 30 [--json]

Starts `panel serve app`, opens the sessions in one headless Chromium (a context each,
so each is its own browser session), presses Play in each (with ``--followers``, only
in the teacher's page, which shares its run live; the followers open its link) and for
``--seconds`` measures, per page, the frames it painted per second and, about every
2 s in every page that trains, the time from a change of the critic's learning rate to
the first painted frame made with it. It also counts requests to any other host,
pages refused ("server is full") and the server's tracebacks, and samples the server's
memory: idle, at its peak, and after every page has closed.

``--light`` (the default above 8 pages) makes each page a lighter client of the same
protocol: the page receives every frame and acknowledges it after the browser's next
animation frame, exactly as it does normally, but Bokeh does not draw the canvases.
The server's work per frame is the same (the same data is sent, the same pacing holds);
only the browser's painting, which on a 2-core machine would otherwise be most of the
load, is left out. ``--full`` draws everything.

One JSON line: sessions, followers, refused, min_fps, median_fps, follower_min_fps,
follower_median_fps, p90_control_ms, offsite_requests, rss_idle_mb, rss_peak_mb,
rss_after_close_mb, server_errors, machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time

from framerate import NUDGE_LR_D  # benchmarks/ is on the path when run as a script

from gan2d.ui.browser import AppServer, chromium_missing, launch_chromium, record_offsite, rss_mb

LOAD_MS = 600_000
# a closed tab's run stops within seconds; Bokeh drops its session (and its document)
# after --unused-session-lifetime (15 s) and its next check (every 17 s)
SESSION_GONE_S = 40
# skips Bokeh's canvas drawing after each plot's first paint (which the page needs to
# finish loading); patches, the readout and the acknowledgement still run
NO_PAINT = """
(() => {
  const patch = () => {
    try {
      const proto = Bokeh.require("models/plots/plot_canvas").PlotView.prototype;
      if (!proto.gan2dNoPaint) {
        const paint = proto.paint;
        proto.paint = function () {
          if (!this.gan2dPainted) { this.gan2dPainted = true; return paint.call(this); }
          this._needs_paint = false;
        };
        proto.gan2dNoPaint = true;
      }
      return true;
    } catch (err) { return false; }
  };
  if (!patch()) {
    const timer = setInterval(() => { if (window.Bokeh && patch()) clearInterval(timer); }, 20);
  }
})();
"""
LATENCY = """
([before, t0]) => {
  const after = Object.entries(window.gan2d.versionPaint).filter(([v]) => +v > before);
  return after.length ? Math.min(...after.map(([, t]) => t)) - t0 : null;
}
"""


class Memory:
    """Samples the server's resident memory twice a second, in a thread."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _open(browser, url: str, light: bool, offsite: list, here: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    if light:
        context.add_init_script(NO_PAINT)
    page = context.new_page()
    record_offsite(page, here, offsite)
    page.goto(url, timeout=LOAD_MS)
    return context, page


def _ready(page) -> bool:
    page.wait_for_function("window.gan2d && window.gan2d.frames > 0", timeout=LOAD_MS)
    return page.get_by_text("server is full").count() == 0


def _measure(pages, trainers, seconds: float) -> tuple[list[float], list[float]]:
    """Frames per second per page, and control->frame latencies of the trainers."""
    start = {id(p): (time.perf_counter(), p.evaluate("window.gan2d.frames")) for p in pages}
    latencies, pending, up = [], [], True
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        for page in trainers:
            pending.append((page, page.evaluate(NUDGE_LR_D, up)))
        up = not up
        time.sleep(2.0)
        for page, mark in pending:
            if mark is not None:
                latency = page.evaluate(LATENCY, mark)
                latencies.append(float("inf") if latency is None else latency)
        pending = []
    fps = []
    for page in pages:
        t0, f0 = start[id(page)]
        fps.append((page.evaluate("window.gan2d.frames") - f0) / (time.perf_counter() - t0))
    return fps, latencies


def run(sessions: int, followers: int, seconds: float, light: bool) -> dict:
    from playwright.sync_api import sync_playwright

    server = AppServer()
    offsite: list[str] = []
    try:
        server.wait_ready()
        here = server.url.rsplit("/", 1)[0] + "/"
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            # idle = the server after a first visit has come and gone: its programs are
            # compiled (they stay, for everyone), no session is open
            context, page = _open(browser, server.url, light, offsite, here)
            _ready(page)
            page.get_by_role("button", name="Play").click()
            page.wait_for_function("window.gan2d.step >= 50", timeout=LOAD_MS)
            context.close()
            time.sleep(SESSION_GONE_S)
            rss_idle = rss_mb(server.pid)
            memory = Memory(server.pid)
            opened = [_open(browser, server.url, light, offsite, here) for _ in range(sessions)]
            refused = sum(not _ready(page) for _, page in opened)
            pages = [page for _, page in opened]
            for page in pages:
                page.get_by_role("button", name="Play").click()
            follower_pages = []
            if followers:
                teacher = pages[0]
                teacher.get_by_role("button", name="Share live").click()
                line = teacher.get_by_text("Live: code").inner_text()
                code = line.split("code ")[1][:6]
                for _ in range(followers):
                    opened.append(
                        _open(browser, f"{server.url}?follow={code}", light, offsite, here)
                    )
                    follower_pages.append(opened[-1][1])
                for page in follower_pages:
                    _ready(page)
            fps, latencies = _measure(pages + follower_pages, pages, seconds)
            for context, _ in opened:
                context.close()
            browser.close()
        time.sleep(SESSION_GONE_S)
        rss_after = rss_mb(server.pid)
        memory.stop()
        errors = server.output().count("Traceback")
    finally:
        server.stop()
    own, follow = fps[:sessions], fps[sessions:]
    finite = sorted(x for x in latencies if x != float("inf"))
    return {
        "sessions": sessions,
        "followers": followers,
        "light_clients": light,
        "seconds": seconds,
        "refused": refused,
        "min_fps": round(min(own), 2),
        "median_fps": round(statistics.median(own), 2),
        "follower_min_fps": round(min(follow), 2) if follow else None,
        "follower_median_fps": round(statistics.median(follow), 2) if follow else None,
        "p90_control_ms": round(finite[int(0.9 * (len(finite) - 1))], 1) if finite else None,
        "control_changes": len(latencies),
        "changes_without_frame": len(latencies) - len(finite),
        "offsite_requests": len(offsite),
        "rss_idle_mb": round(rss_idle),
        "rss_peak_mb": round(memory.peak),
        "rss_after_close_mb": round(rss_after),
        "server_errors": errors,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="pages that train")
    parser.add_argument("--followers", type=int, default=0, help="pages that follow page 1")
    parser.add_argument("--seconds", type=float, default=60.0)
    paint = parser.add_mutually_exclusive_group()
    paint.add_argument("--light", action="store_true", help="pages do not draw (default > 8)")
    paint.add_argument("--full", action="store_true", help="pages draw everything")
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args()
    if args.sessions < 1 or args.followers < 0 or args.seconds <= 0:
        parser.error("--sessions >= 1, --followers >= 0, --seconds > 0")
    missing = chromium_missing()
    if missing:
        raise SystemExit(missing)
    light = args.light or (not args.full and args.sessions + args.followers > 8)
    result = run(args.sessions, args.followers, args.seconds, light)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
