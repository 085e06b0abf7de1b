"""What showing a frame costs the server's event loop, for one page.

    python benchmarks/page_update.py [--frames 40]

Builds a lab's page in a Bokeh document as ``panel serve app`` does for a session,
trains the default preset to its first frames, and times on this thread what the event
loop does for each frame a page shows (``LabPlots.update``: the map, the points, the
arrows, the curves' turn): ``--frames`` frames of one run, then the first frame of a new
run (a restart, or a follower's first frame), which empties the charts. It also counts
how often Bokeh walked the page's whole model graph (each walk is about as costly as
the rest of a frame many times over). Then the same frames as a page in a busy class
gets them, 3 a second, late in a lesson (each chart holds its most points): at that
pace each frame also redraws the charts whose turn has come. Then, for the class's
frames, what making each frame's websocket message costs (``patch_message`` and its
bytes, as the server writes them) against Bokeh's own ``PATCH-DOC`` for the same
changes (as the server makes it for other changes: with ``refer_lazily``). Prints one
JSON line: median ms per frame (``frame_ms``, and ``class_frame_ms`` for the class's
pace), ms for a new run's first frame, the graph walks and their ms each, median ms per
class frame's message (``message_ms``, and ``bokeh_message_ms``) with its binary
buffers, the page's models, and the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from types import SimpleNamespace

import panel as pn
from bokeh.document import Document
from bokeh.document.events import DocumentPatchedEvent
from bokeh.document.models import DocumentModelManager
from bokeh.protocol import Protocol

from gan2d.bench.speed import machine
from gan2d.ui import plots as lab_plots
from gan2d.ui.clock import refer_lazily
from gan2d.ui.feed import patch_message, wire_bytes
from gan2d.ui.lab import Lab

CLASS_FPS = 3.0  # about what each of 30 students training at once gets on a 2-core server


def first_frames(lab: Lab, n: int) -> list:
    """The run's next ``n`` frames, taken as a page that has painted each would."""
    frames = []
    lab.runner.play()
    deadline = time.monotonic() + 300
    while len(frames) < n and time.monotonic() < deadline:
        frame = lab.runner.take_frame()
        if frame is None:
            time.sleep(0.005)
            continue
        frames.append(frame)
    lab.runner.pause()
    if len(frames) < n:
        raise SystemExit(f"the run made {len(frames)} frames in 300 s, not {n}")
    return frames


def class_frames(plots, visible, frames, doc) -> tuple[list[float], dict[str, list]]:
    """Seconds per frame for ``frames`` shown at ``CLASS_FPS`` (the plots' clock moved
    on by hand), once each chart holds its most points (``ROLLOVER``); and, for each of
    those frames, the seconds and binary buffers of its message, made both ways."""
    now = [time.monotonic()]
    real_time, lab_plots.time = lab_plots.time, SimpleNamespace(monotonic=lambda: now[0])
    step = frames[-1].step
    times, messages = [], {"ours": [], "bokeh": []}
    events: list = []
    doc.on_change(events.append)
    try:
        for i in range(lab_plots.ROLLOVER + len(frames)):
            frame = dataclasses.replace(frames[i % len(frames)], step=step + i)
            now[0] += 1.0 / CLASS_FPS
            events.clear()
            t0 = time.perf_counter()
            plots.update(frame, visible)
            if i >= lab_plots.ROLLOVER:
                times.append(time.perf_counter() - t0)
                patches = [e for e in events if isinstance(e, DocumentPatchedEvent)]
                for way, make in (("ours", patch_message), ("bokeh", bokeh_message)):
                    t0 = time.perf_counter()
                    message = make(patches)
                    wire_bytes(message)
                    messages[way].append((time.perf_counter() - t0, len(message.buffers)))
    finally:
        lab_plots.time = real_time
        doc.remove_on_change(events.append)
    return times, messages


def bokeh_message(patches):
    return Protocol().create("PATCH-DOC", patches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    pn.extension()
    refer_lazily()  # as the server does for every page
    lab = Lab(query={})
    doc = Document()
    doc.add_root(pn.Row(lab.guide.panel, lab.layout).get_root(doc))
    lab.connect()
    try:
        frames = first_frames(lab, args.frames + 1)
    finally:
        lab.close()
    walks = []
    recompute = DocumentModelManager.recompute

    def counted(self):
        t0 = time.perf_counter()
        recompute(self)
        walks.append(time.perf_counter() - t0)

    DocumentModelManager.recompute = counted
    plots, visible = lab.plots, dict.fromkeys(("field", "manifold", "hist"), True)
    doc.models.flush_synced()  # as Bokeh does once the page has the document
    plots.update(frames[0], visible)
    times = []
    for frame in frames[1:]:
        t0 = time.perf_counter()
        plots.update(frame, visible)
        times.append(time.perf_counter() - t0)
    steady_walks = len(walks)
    restart = dataclasses.replace(frames[-1], run_id=object())
    t0 = time.perf_counter()
    plots.update(restart, visible)
    new_run_s = time.perf_counter() - t0
    DocumentModelManager.recompute = recompute
    t0 = time.perf_counter()
    doc.models.recompute()
    walk_s = time.perf_counter() - t0
    class_times, messages = class_frames(plots, visible, frames, doc)
    out = {
        "frame_ms": round(1000 * statistics.median(times), 2),
        "class_frame_ms": round(1000 * statistics.median(class_times), 2),
        "new_run_first_frame_ms": round(1000 * new_run_s, 1),
        "graph_walks_per_frame": round(steady_walks / len(times), 2),
        "graph_walks_new_run": len(walks) - steady_walks,
        "graph_walk_ms": round(1000 * walk_s, 1),
        "message_ms": round(1000 * statistics.median(t for t, _ in messages["ours"]), 2),
        "message_buffers": statistics.median(n for _, n in messages["ours"]),
        "bokeh_message_ms": round(1000 * statistics.median(t for t, _ in messages["bokeh"]), 2),
        "bokeh_message_buffers": statistics.median(n for _, n in messages["bokeh"]),
        "page_models": len(doc.models),
        "machine": machine(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
