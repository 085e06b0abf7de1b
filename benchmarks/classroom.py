"""A class on one server: N students training at once, or M students following one run.

    python benchmarks/classroom.py --sessions 8 [--seconds 60] [--preset wgan-gp] [--json]
    python benchmarks/classroom.py --sessions 30 --dragging 2 --clients wire [--json]
    python benchmarks/classroom.py --sessions 30 --processes 2 --clients wire [--json]
    python benchmarks/classroom.py --sessions 1 --followers 30 [--json]

Starts `panel serve app`, opens the sessions in one headless Chromium (a context each,
so each is its own browser session) on ``--preset`` (default: the app's default) at
``--speed`` steps a frame (default 5), presses Play in each (with ``--followers``, only
in the teacher's page, which shares its run live; the followers open its link) and for
``--seconds`` measures, per page, the frames it painted per second and, about every
2 s in every page that trains (less often in a class of more than 8: four changes a
second in all), the time from a change of the critic's learning rate to the first
painted frame made with it. It also counts requests to any other host,
pages refused ("server is full") and the server's tracebacks, and samples the server's
memory: idle, at its peak, and after every page has closed.

``--clients`` says what a student's page is:

- ``drawn`` (the default up to 8 pages): Chromium draws everything, as for a student;
- ``light`` (the default above 8): Chromium receives every frame and acknowledges it
  after the browser's next animation frame, exactly as it does normally, but Bokeh
  does not draw the canvases;
- ``wire``: no browser: ``wire_client.py`` speaks the page's websocket protocol (it
  pulls the document, presses Play, acknowledges each frame, moves the slider) and
  drops the frames' bytes. In a classroom each page runs on the student's machine; on
  the benchmark's machine 30 browsers would take most of the cores for themselves.

With ``--dragging K`` (protocol clients only), K of the training pages move the slider
twice a second instead, as a student dragging it back and forth would, and the JSON adds
their own ``dragging_min_fps`` and ``dragging_median_fps`` (``min_fps`` counts them too).

With ``--processes K`` (protocol clients only), K ``panel serve`` processes share the
machine's cores (``GAN2D_WORKERS`` = cores / K each) and the students are dealt to them in
turn, as the sticky proxy of the README's recipe spreads browsers; a shared run's followers
go to the teacher's process, as the proxy sends them. The server's figures (CPU, memory,
tracebacks) are then those of all K processes together.

The server's work per frame is the same in every case (the same data is sent, the same
pacing holds); ``server_ms_per_frame`` shows how close.

One JSON line: sessions, followers, preset, speed, processes, refused, min_fps, median_fps,
median_steps_per_s (protocol clients only: the training steps each page's run made per
second, the median over the pages),
follower_min_fps, follower_median_fps, median_control_ms and p90_control_ms,
longest_stall_ms (protocol
clients only: the longest time no page got a frame, the server's worst stall),
offsite_requests (pages in a browser only), rss_idle_mb, rss_peak_mb,
rss_after_close_mb, rss_after_each_class_mb (with ``--classes N``: the same class N times
in a row, the frame rates from the first; the memory after each, to tell what the first
class leaves for every later one from what each class leaves), server_errors,
server_cores (how much of one core the server used while measuring), machine_cores (all
processes, pages included), server_ms_per_frame (the server's CPU time per frame
delivered to a page, training included),
loop_ms_per_frame (the part of it spent on the server's event-loop thread, where every
page's messages are built and written: one thread, whatever the cores), machine,
and with ``--clients wire`` a timeline: the median frame rate and the server's memory
for each minute (for a soak: ``--seconds 1800``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import statistics
import threading
import time

from framerate import NUDGE_LR_D  # benchmarks/ is on the path when run as a script
from wire_client import WireClient

from gan2d.presets import PRESETS
from gan2d.ui.browser import (
    AppServer,
    chromium_missing,
    cpu_seconds,
    launch_chromium,
    machine_busy_seconds,
    record_offsite,
    rss_mb,
)
from gan2d.ui.limits import keep_out_of_collections
from gan2d.ui.settings import DEFAULT_PRESET

LOAD_MS = 600_000
# a closed tab's run stops within seconds; Bokeh drops its session (and its document)
# after --unused-session-lifetime (15 s) and its next check (every 17 s)
SESSION_GONE_S = 40
# a control change in every training page this often (2 s), but no more than four a
# second in the whole class: a class of 30 moving sliders every 2 s measures the
# settings changes more than the training
CHANGE_EVERY_S = 2.0
CLASS_CHANGES_PER_S = 4.0
DRAG_EVERY_S = 0.5  # a dragging student's slider moves this often
TIMELINE_S = 60.0  # with protocol clients, the frame rate and memory once a minute


def _mb(value: float) -> int | None:
    return None if math.isnan(value) else round(value)


def change_every_s(trainers: int) -> float:
    return max(CHANGE_EVERY_S, trainers / CLASS_CHANGES_PER_S)


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


def _rss(pids: list[int]) -> float:
    """The server processes' resident memory, together (MB)."""
    return sum(rss_mb(pid) for pid in pids)


def _cpu(pids: list[int], main_thread: bool = False) -> float:
    return sum(cpu_seconds(pid, main_thread) for pid in pids)


class Memory:
    """Samples the server's resident memory twice a second, in a thread."""

    def __init__(self, pids: list[int]):
        self.pids, self.peak, self._stop = pids, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, _rss(self.pids))

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


class CpuWindow:
    """CPU time of the server and of the whole machine from now until ``result``."""

    def __init__(self, pids: list[int]):
        self.pids, self.t0 = pids, time.perf_counter()
        self.server0, self.busy0 = _cpu(pids), machine_busy_seconds()
        self.loop0 = _cpu(pids, main_thread=True)

    def result(self, frames: float) -> dict:
        wall = time.perf_counter() - self.t0
        server = _cpu(self.pids) - self.server0
        return {
            # how much of one core the server used, and of all cores the machine (pages too)
            "server_cores": server / wall,
            "machine_cores": (machine_busy_seconds() - self.busy0) / wall,
            "server_ms_per_frame": 1000 * server / max(1.0, frames),
            "loop_ms_per_frame": 1000 * (_cpu(self.pids, True) - self.loop0) / max(1.0, frames),
        }


def _measure(pages, trainers, seconds: float, pids: list[int]) -> dict:
    """Frames per second per page, control->frame latencies of the trainers, and the
    CPU the server and the whole machine used meanwhile."""
    start = {id(p): (time.perf_counter(), p.evaluate("window.gan2d.frames")) for p in pages}
    cpu = CpuWindow(pids)
    latencies, pending, up = [], [], True
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        for page in trainers:
            pending.append((page, page.evaluate(NUDGE_LR_D, up)))
        up = not up
        time.sleep(change_every_s(len(trainers)))
        for page, mark in pending:
            if mark is not None:
                latency = page.evaluate(LATENCY, mark)
                latencies.append(float("inf") if latency is None else latency)
        pending = []
    fps, frames = [], 0
    for page in pages:
        t0, f0 = start[id(page)]
        n = page.evaluate("window.gan2d.frames") - f0
        fps.append(n / (time.perf_counter() - t0))
        frames += n
    return {"fps": fps, "latencies": latencies, **cpu.result(frames)}


def _browser_sessions(
    server, sessions: int, followers: int, seconds: float, light: bool, query: str
):
    """Measure with pages in one headless Chromium; returns (refused, measured, offsite)."""
    from playwright.sync_api import sync_playwright

    offsite: list[str] = []
    here = server.url.rsplit("/", 1)[0] + "/"
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        url = server.url + query
        opened = [_open(browser, url, light, offsite, here) for _ in range(sessions)]
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
                opened.append(_open(browser, f"{server.url}?follow={code}", light, offsite, here))
                follower_pages.append(opened[-1][1])
            for page in follower_pages:
                _ready(page)
        measured = _measure(pages + follower_pages, pages, seconds, server.pids)
        for context, _ in opened:
            context.close()
        browser.close()
    return refused, measured, len(offsite)


def lab_query(preset: str, speed: int = 5) -> str:
    """The query of a training page: ``preset`` at ``speed`` steps a frame (5: the speed
    the README's classroom tables were measured at)."""
    return f"?preset={preset}&speed={speed}"


async def _drag(client: WireClient, until: float) -> None:
    """Move ``client``'s slider back and forth every ``DRAG_EVERY_S`` until ``until``."""
    up = True
    while time.perf_counter() < until:
        await client.nudge_lr_d(up)
        up = not up
        await asyncio.sleep(DRAG_EVERY_S)


async def _wire_sessions(
    servers: list, sessions: int, followers: int, seconds: float, query: str, dragging: int = 0
):
    """Measure with protocol clients (no browser); returns (refused, measured, None).
    Students are dealt to ``servers`` in turn. The last ``dragging`` training clients
    drag their slider instead of the class's occasional change."""
    everyone_training = [WireClient(servers[i % len(servers)].url + query) for i in range(sessions)]
    clients = everyone_training[: sessions - dragging]
    draggers = everyone_training[sessions - dragging :]
    for client in everyone_training:
        await client.open()
    await asyncio.gather(
        *(asyncio.wait_for(c.ready.wait(), LOAD_MS / 1000) for c in everyone_training)
    )
    refused = sum(c.refused for c in everyone_training)
    for client in everyone_training:
        await client.press_play()
    watchers = []
    if followers:
        code = await everyone_training[0].share_live()
        watchers = [WireClient(servers[0].url, follow=code) for _ in range(followers)]
        for client in watchers:
            await client.open()
        await asyncio.gather(*(asyncio.wait_for(c.ready.wait(), LOAD_MS / 1000) for c in watchers))
    everyone = everyone_training + watchers
    # the clients' documents are a million objects: left out of this process's own full
    # garbage collections (each paused every client ~0.4 s, which counted as the server's),
    # as the server does with its pages'
    keep_out_of_collections()
    t0, start = time.perf_counter(), [c.frames for c in everyone]
    first_steps = [c.step for c in everyone_training]
    drags = [asyncio.create_task(_drag(c, t0 + seconds)) for c in draggers]
    pids = [pid for server in servers for pid in server.pids]
    cpu = CpuWindow(pids)
    latencies, up = [], True
    timeline, mark_t, mark_frames = [], t0, list(start)
    while time.perf_counter() - t0 < seconds:
        now = time.perf_counter()
        if now - mark_t >= TIMELINE_S:  # a soak: is the frame rate steady, memory flat?
            frames = [c.frames for c in everyone]
            rates = [(f - f0) / (now - mark_t) for f, f0 in zip(frames, mark_frames, strict=True)]
            timeline.append(
                {
                    "t_s": round(now - t0),
                    "median_fps": round(statistics.median(rates), 2),
                    "rss_mb": round(_rss(pids)),
                }  # fmt: skip
            )
            mark_t, mark_frames = now, frames
        marks = [await c.nudge_lr_d(up) for c in clients]
        up = not up
        await asyncio.sleep(change_every_s(max(1, len(clients))))
        for client, mark in zip(clients, marks, strict=True):
            latency = client.latency_ms(*mark)
            latencies.append(float("inf") if latency is None else latency)
    await asyncio.gather(*drags)
    wall = time.perf_counter() - t0
    counts = [c.frames - f0 for c, f0 in zip(everyone, start, strict=True)]
    fps = [n / wall for n in counts]
    measured = {"fps": fps, "latencies": latencies, "timeline": timeline}
    last_steps = [c.step for c in everyone_training]
    measured["steps_per_s"] = [(b - a) / wall for a, b in zip(first_steps, last_steps, strict=True)]
    measured["longest_stall_ms"] = longest_stall_ms(everyone, t0, t0 + wall)
    measured["dragging_fps"] = fps[sessions - dragging : sessions]
    measured.update(cpu.result(sum(counts)))
    for client in everyone:
        await client.close()
    return refused, measured, None


def longest_stall_ms(clients: list[WireClient], start: float, end: float) -> float:
    """The longest time between ``start`` and ``end`` when no client got a frame: how
    long the whole server stood still (a garbage collection, say) at its worst."""
    times = sorted(t for c in clients for t in c.frame_times if start <= t <= end)
    edges = [start, *times, end]
    return 1000 * max(b - a for a, b in itertools.pairwise(edges))


def _warm_visits(servers: list, query: str) -> None:
    """A first visit to each server that plays, then leaves: the programs are compiled
    (they stay, for everyone) and its session is gone, so each server is idle as a class
    would find it."""

    async def visit(server):
        client = WireClient(server.url + query)
        await client.open()
        await asyncio.wait_for(client.ready.wait(), LOAD_MS / 1000)
        await client.press_play()
        while client.step < 50:
            await asyncio.sleep(0.1)
        await client.close()

    for server in servers:
        asyncio.run(visit(server))
    time.sleep(SESSION_GONE_S)


def run(
    sessions: int,
    followers: int,
    seconds: float,
    clients: str,
    preset: str = DEFAULT_PRESET,
    dragging: int = 0,
    processes: int = 1,
    speed: int = 5,
    classes: int = 1,
) -> dict:
    query = lab_query(preset, speed)
    # one process: the server as an admin starts it; several: the cores shared out
    env = None if processes == 1 else {"GAN2D_WORKERS": str(max(1, os.cpu_count() // processes))}
    servers = []
    try:
        for _ in range(processes):
            servers.append(AppServer(env=env))  # one by one: those started are stopped
        for server in servers:
            server.wait_ready()
        pids = [pid for server in servers for pid in server.pids]
        _warm_visits(servers, query)
        rss_idle = _rss(pids)
        memory = Memory(pids)
        after_each = []
        for i in range(classes):
            if clients == "wire":
                got = asyncio.run(
                    _wire_sessions(servers, sessions, followers, seconds, query, dragging)
                )
            else:
                got = _browser_sessions(
                    servers[0], sessions, followers, seconds, light=clients == "light", query=query
                )
            if i == 0:
                refused, measured, offsite = got
            time.sleep(SESSION_GONE_S)
            after_each.append(_rss(pids))
        rss_after = after_each[0]
        memory.stop()
        errors = sum(server.output().count("Traceback") for server in servers)
    finally:
        for server in servers:
            server.stop()
    fps, latencies = measured["fps"], measured["latencies"]
    own, follow = fps[:sessions], fps[sessions:]
    drag = measured.get("dragging_fps") or []
    stall = measured.get("longest_stall_ms")  # protocol clients only
    steps = measured.get("steps_per_s")  # protocol clients only
    finite = sorted(x for x in latencies if x != float("inf"))
    return {
        "sessions": sessions,
        "followers": followers,
        "clients": clients,
        "preset": preset,
        "speed": speed,
        "processes": processes,
        "seconds": seconds,
        "refused": refused,
        "min_fps": round(min(own), 2),
        "median_fps": round(statistics.median(own), 2),
        "median_steps_per_s": round(statistics.median(steps)) if steps else None,
        "dragging": dragging,
        "dragging_min_fps": round(min(drag), 2) if drag else None,
        "dragging_median_fps": round(statistics.median(drag), 2) if drag else None,
        "follower_min_fps": round(min(follow), 2) if follow else None,
        "follower_median_fps": round(statistics.median(follow), 2) if follow else None,
        "median_control_ms": round(statistics.median(finite), 1) if finite else None,
        "p90_control_ms": round(finite[int(0.9 * (len(finite) - 1))], 1) if finite else None,
        "control_changes": len(latencies),
        "longest_stall_ms": round(stall) if stall is not None else None,
        "changes_without_frame": len(latencies) - len(finite),
        "offsite_requests": offsite,
        "rss_idle_mb": _mb(rss_idle),
        "rss_peak_mb": _mb(memory.peak),
        "rss_after_close_mb": _mb(rss_after),  # None: the server had exited
        "rss_after_each_class_mb": [_mb(r) for r in after_each] if classes > 1 else None,
        "server_errors": errors,
        "server_cores": round(measured["server_cores"], 2),
        "machine_cores": round(measured["machine_cores"], 2),
        "server_ms_per_frame": round(measured["server_ms_per_frame"], 1),
        "loop_ms_per_frame": round(measured["loop_ms_per_frame"], 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "timeline": measured.get("timeline") or None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="pages that train")
    parser.add_argument("--followers", type=int, default=0, help="pages that follow page 1")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--clients",
        choices=("drawn", "light", "wire"),
        help="pages that draw, that do not draw, or protocol clients (default: drawn up to "
        "8 pages, else light)",
    )
    parser.add_argument(
        "--preset", choices=list(PRESETS), default=DEFAULT_PRESET, help="what the pages train"
    )
    parser.add_argument(
        "--dragging", type=int, default=0, help="training pages that drag a slider (wire only)"
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="panel serve processes (wire only)"
    )
    parser.add_argument("--speed", type=int, default=5, help="steps a frame each page asks")
    parser.add_argument(
        "--classes", type=int, default=1, help="the same class this many times in a row"
    )
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args()
    if (
        args.sessions < 1
        or args.followers < 0
        or args.seconds <= 0
        or args.speed < 1
        or args.classes < 1
    ):
        parser.error(
            "--sessions >= 1, --followers >= 0, --seconds > 0, --speed >= 1, --classes >= 1"
        )
    clients = args.clients or ("drawn" if args.sessions + args.followers <= 8 else "light")
    if not 0 <= args.dragging <= args.sessions:
        parser.error("--dragging is between 0 and --sessions")
    if args.dragging and clients != "wire":
        parser.error("--dragging needs --clients wire")
    if not 1 <= args.processes <= args.sessions:
        parser.error("--processes is between 1 and --sessions")
    if args.processes > 1 and clients != "wire":
        parser.error("--processes needs --clients wire")
    missing = chromium_missing()
    if missing and clients != "wire":
        raise SystemExit(missing)
    result = run(
        args.sessions,
        args.followers,
        args.seconds,
        clients,
        args.preset,
        args.dragging,
        args.processes,
        args.speed,
        args.classes,
    )
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
