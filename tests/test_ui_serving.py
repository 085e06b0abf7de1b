"""Serving the app beyond one laptop: a password for a server open to the internet
(Panel's ``--basic-auth``), and the admin's limits read from the environment."""

from __future__ import annotations

import asyncio
import http.client
import socket
import sys
import threading
import time
import urllib.parse

import panel as pn
import pytest
from helpers import wait_until

from gan2d.ui import limits
from gan2d.ui.browser import ROOT, AppServer, cpu_seconds, rss_mb


def _cookies(response) -> str:
    return "; ".join(c.split(";")[0] for c in response.msg.get_all("Set-Cookie") or [])


def test_a_password_protected_server_lets_in_only_who_knows_it():
    server = AppServer(
        args=["--basic-auth", "class-secret", "--cookie-secret", "a-long-random-secret"]
    )
    try:
        server.wait_ready()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.request("GET", "/app")
        response = conn.getresponse()
        response.read()
        assert response.status == 302 and "login" in response.getheader("Location")

        def login(password: str):
            form = urllib.parse.urlencode({"username": "student", "password": password})
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            conn.request("POST", "/login", form, headers)
            answer = conn.getresponse()
            answer.read()
            return answer

        wrong = login("guess")
        assert "error" in wrong.getheader("Location")
        right = login("class-secret")
        conn.request("GET", "/app", headers={"Cookie": _cookies(right)})
        page = conn.getresponse()
        assert page.status == 200 and b"gan2d" in page.read()
        assert "Traceback" not in server.output()
    finally:
        server.stop()


def test_the_admins_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GAN2D_MAX_SESSIONS", "12")
    monkeypatch.setenv("GAN2D_MAX_STEPS_PER_S", "250")
    assert limits.max_sessions() == 12 and limits.max_steps_per_s() == 250.0
    monkeypatch.setenv("GAN2D_MAX_SESSIONS", "lots")  # not a number: the default holds
    monkeypatch.delenv("GAN2D_MAX_STEPS_PER_S")
    assert limits.max_sessions() >= 1 and limits.max_steps_per_s() is None
    assert limits.frame_rate() == limits.FRAME_RATE  # unset: the default
    monkeypatch.setenv("GAN2D_FRAME_RATE", "10")
    assert limits.frame_rate() == 10.0
    monkeypatch.setenv("GAN2D_FRAME_RATE", "fast")  # not a number: the default holds
    assert limits.frame_rate() == limits.FRAME_RATE
    for off in ("0", " 0.00 ", "OFF"):  # off: a frame trains the steps asked
        monkeypatch.setenv("GAN2D_FRAME_RATE", off)
        assert limits.frame_rate() is None, off
    for odd in ("-2", "nan", "inf"):  # below the minimum, or not a number: the default
        monkeypatch.setenv("GAN2D_FRAME_RATE", odd)
        assert limits.frame_rate() == limits.FRAME_RATE, odd


def test_panels_admin_page_is_served_beside_the_app():
    server = AppServer(args=["--admin"])
    try:
        server.wait_ready()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.request("GET", "/admin")
        response = conn.getresponse()
        assert response.status == 200 and b"admin" in response.read().lower()
    finally:
        server.stop()


def test_the_classroom_benchmarks_protocol_client_trains_follows_and_changes(app_server):
    """``benchmarks/wire_client.py`` stands in for a student's page in the classroom
    benchmark: it must get a lab, train, follow a shared run and see its own change,
    and send its messages at once, as a browser does (without, each acknowledgement
    waited ~40 ms for the server's delayed ACK, and one page got half its frames)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from wire_client import WireClient

    async def scenario():
        teacher = WireClient(app_server.url)
        await teacher.open()
        await asyncio.wait_for(teacher.ready.wait(), 120)
        assert not teacher.refused and teacher.step == 0
        sock = teacher._ws.stream.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await teacher.press_play()
        code = await teacher.share_live()
        student = WireClient(app_server.url, follow=code)
        await student.open()
        await asyncio.wait_for(student.ready.wait(), 120)
        before, t0 = await teacher.nudge_lr_d(up=True)
        for _ in range(600):  # up to 60 s on a busy machine
            if teacher.latency_ms(before, t0) is not None and student.step > 20:
                break
            await asyncio.sleep(0.1)
        assert teacher.latency_ms(before, t0) is not None, "no frame with the new setting"
        assert student.step > 20 and student.frames > 1  # the follower sees training
        for client in (teacher, student):
            await client.close()

    asyncio.run(scenario())
    assert "Traceback" not in app_server.output()


def test_the_classroom_benchmark_reports_the_longest_time_no_page_got_a_frame():
    """``longest_stall_ms``: a pause of the whole server (a garbage collection, say)
    shows as a gap in every page's frames at once; one slow page does not."""
    from types import SimpleNamespace

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from classroom import longest_stall_ms

    fast = SimpleNamespace(frame_times=[-5.0, 0.1, 0.2, 0.3, 1.5, 1.6, 1.7, 9.0])
    slow = SimpleNamespace(frame_times=[0.15, 1.65])  # 1.5 s between its frames
    assert longest_stall_ms([fast, slow], 0.0, 2.0) == pytest.approx(1200)  # 0.3 -> 1.5
    assert longest_stall_ms([slow], 0.0, 2.0) == pytest.approx(1500)
    assert longest_stall_ms([SimpleNamespace(frame_times=[])], 0.0, 2.0) == pytest.approx(2000)


def test_forty_sessions_opened_and_closed_leave_the_server_serving(app_server):
    """Forty students come and go (ten at a time): the next one still gets a lab that
    trains, no closed session keeps training, and the server's memory stays bounded:
    once the first ten have compiled the lab's programs, thirty more add little (Bokeh
    drops a closed session some 15 s later, so up to a batch may still be held when
    it is measured; 30 sessions kept for good would add over a third). The labs train
    in the server's trainer process, whose memory counts too."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from wire_client import WireClient

    after_batch: list[float] = []
    trainer_cpu = []

    def server_mb() -> float:  # the server and its trainer process
        return sum(rss_mb(pid) for pid in app_server.pids)

    async def scenario():
        (trainer_pid,) = [pid for pid in app_server.pids if pid != app_server.pid]
        trainer_cpu.append(cpu_seconds(trainer_pid))
        for _ in range(4):
            batch = [WireClient(app_server.url) for _ in range(10)]
            for client in batch:
                await client.open()
            await asyncio.gather(*(asyncio.wait_for(c.ready.wait(), 120) for c in batch))
            assert not any(c.refused for c in batch)
            for client in batch:
                await client.press_play()
            for client in batch:
                await client.close()
            after_batch.append(server_mb())
        last = WireClient(app_server.url)
        await last.open()
        await asyncio.wait_for(last.ready.wait(), 120)
        await last.press_play()
        # the closed sessions' runs stop: soon this lab shares the server with nobody
        for _ in range(600):
            if last.step > 0 and "sharing" not in last.readout:
                break
            await asyncio.sleep(0.1)
        assert last.step > 0 and not last.refused
        assert "sharing" not in last.readout, last.readout
        trainer_cpu.append(cpu_seconds(trainer_pid))
        await last.close()

    asyncio.run(scenario())
    print("server RSS after each ten (MB):", [round(mb) for mb in after_batch])
    assert server_mb() < 1.3 * after_batch[0], after_batch
    # the labs trained in the trainer process beside the server
    assert trainer_cpu[1] - trainer_cpu[0] > 1.0, trainer_cpu
    assert "Traceback" not in app_server.output()


def test_a_frame_acknowledgement_reaches_its_lab_without_busying_the_server():
    """A class acknowledges hundreds of frames a second: each one reaches the lab, and
    none goes through Panel's server-wide "busy" bookkeeping (an eighth of the event
    loop's time with 30 pages)."""
    from bokeh.document import Document
    from panel.models.esm import ESMEvent

    from gan2d.ui.clock import FrameClock

    got, busy = [], []
    clock = FrameClock()
    clock.on_msg(lambda event: got.append(event.data))
    doc = Document()
    model = clock.get_root(doc)
    watcher = pn.state.param.watch(lambda e: busy.append(e.new), "_busy_counter")
    try:
        clock._process_bokeh_event(doc, ESMEvent(model=model, data=7))
        clock._process_bokeh_event(doc, ESMEvent(model=model, data={"visible": False}))
    finally:
        pn.state.param.unwatch(watcher)
    assert got == [7, {"visible": False}]
    assert busy == []


def test_event_callbacks_get_their_event_or_not_as_their_signature_says(monkeypatch):
    """Bokeh inspects a callback's signature to know whether to pass the event; the
    app remembers the answer per callback (it inspected it on every acknowledgement)."""
    from bokeh.events import ButtonClick
    from bokeh.models import Button
    from bokeh.util import callback_manager

    from gan2d.ui import clock

    inspected = []
    real = callback_manager._nargs
    monkeypatch.setattr(callback_manager, "_nargs", lambda fn: inspected.append(fn) or real(fn))
    clock.remember_callback_arity()
    clock.remember_callback_arity()  # once is enough: a second call changes nothing
    calls = []
    button = Button()
    with_event = lambda event: calls.append(("with", type(event).__name__))  # noqa: E731
    without = lambda: calls.append(("without",))  # noqa: E731
    button.on_event(ButtonClick, with_event)
    button.on_event(ButtonClick, without)
    for _ in range(3):
        button._trigger_event(ButtonClick(button))
    assert calls == [("with", "ButtonClick"), ("without",)] * 3
    assert inspected == [with_event, without]  # once each (on registering), not 4 times


def _a_page_and_a_new_model():
    """A document (a page, its models synced) with a renderer and its source, and a
    source the page does not have yet."""
    from bokeh.document import Document
    from bokeh.models import ColumnDataSource, GlyphRenderer, Scatter

    doc = Document()
    source = ColumnDataSource({"x": [1.0, 2.0]})
    renderer = GlyphRenderer(data_source=source, glyph=Scatter())
    doc.add_root(renderer)
    doc.models.flush_synced()
    return doc, source, renderer, ColumnDataSource({"x": [3.0]})


def test_patch_messages_refer_to_the_pages_models_as_bokehs_own_do():
    """The lazy serializer (``refer_lazily``) builds the same patch as Bokeh's: models
    the page has are referred to, a model new to the page is defined in full."""
    import json

    from bokeh.core.serialization import Serializer
    from bokeh.document.events import ModelChangedEvent
    from bokeh.models import Scatter

    from gan2d.ui.clock import LazyRefSerializer

    doc, source, renderer, fresh = _a_page_and_a_new_model()
    events = [
        ModelChangedEvent(doc, source, "data", {"x": [5.0]}),
        ModelChangedEvent(doc, renderer, "data_source", fresh),  # a model new to the page
    ]
    known = doc.models.synced_references
    theirs, ours = Serializer(references=known), LazyRefSerializer(references=known)
    expected, got = theirs.encode(events), ours.encode(events)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert got[0]["model"] == {"id": source.id}  # a reference, not a definition
    assert got[1]["new"]["type"] == "object" and got[1]["new"]["id"] == fresh.id
    assert ours.has_ref(source) and ours.has_ref(fresh) and not ours.has_ref(Scatter())


def test_a_patch_message_gives_the_page_what_bokehs_own_would():
    """``patch_message`` (what a frame's patch is built with) and Bokeh's own
    ``PATCH-DOC``, applied to two copies of a page, leave them alike: long arrays,
    short ones (sent as lists, NaN and all), a model the page has (a reference) and one
    it does not (sent whole, then known); with fewer binary buffers."""
    import numpy as np
    from bokeh.document import Document
    from bokeh.models import ColumnDataSource, Range1d
    from bokeh.plotting import figure
    from bokeh.protocol import Protocol

    from gan2d.ui.feed import patch_message

    def page_and_events():
        doc = Document()
        fig = figure()
        source = ColumnDataSource({"x": [0.0], "y": [0.0]})
        curve = ColumnDataSource({"x": [0.0], "y": [1.0]})
        fig.scatter("x", "y", source=source)
        fig.line("x", "y", source=curve)
        other = figure()
        doc.add_root(fig)
        doc.add_root(other)
        doc.models.flush_synced()  # as Bokeh does once the page has the document
        page = Document.from_json(doc.to_json())
        events: list = []
        doc.on_change(events.append)
        source.data = {"x": np.linspace(0, 1, 300), "y": np.array([1.0, np.nan, 3.0] * 100)}
        curve.stream({"x": np.array([2.0, 3.0, 4.0]), "y": np.array([np.nan, 5.0, np.inf])})
        fig.x_range = Range1d(-1, 5)  # a model the page does not have yet
        fig.y_range.end = 9.0
        other.x_range = fig.y_range  # a model the page has: named, not sent again
        return doc, page, (source, curve), (fig, other), events

    pages = []
    for make in (patch_message, lambda events: Protocol().create("PATCH-DOC", events)):
        doc, page, sources, (fig, other), events = page_and_events()
        message = make(events)
        message.apply_to_document(page)
        for source in sources:
            shown = page.get_model_by_id(source.id).data
            for column in ("x", "y"):
                np.testing.assert_array_equal(
                    np.asarray(shown[column], float), np.asarray(source.data[column], float)
                )
        page_fig = page.get_model_by_id(fig.id)
        assert (page_fig.x_range.id, page_fig.x_range.end) == (fig.x_range.id, 5)
        assert page_fig.y_range.end == 9.0
        assert page.get_model_by_id(other.id).x_range is page_fig.y_range
        assert fig.x_range not in doc.models._new_models  # the page has it now
        # one model goes whole (the new range); the others are named by their ids
        assert message.content_json.count('"type":"object"') == 1
        pages.append(len(message.buffers))
    ours, bokehs = pages
    assert ours < bokehs  # the streamed points went as lists


def test_the_frame_clock_sets_a_frames_values_on_its_page_with_the_number_last(monkeypatch):
    """A frame's values go to the page's model (the number last) and stay on the
    component; Panel does not take them back from the model as if the page had changed
    them (work for every frame of every page, for nothing), while a value the page
    itself changes still reaches the component."""
    from bokeh.document import Document

    from gan2d.ui.clock import FrameClock

    clock = FrameClock()
    doc = Document()
    model = clock.get_root(doc)
    doc.add_root(model)
    changed = []
    doc.on_change(lambda event: changed.append(getattr(event, "attr", None)))
    taken_back = []
    process = clock._process_events
    monkeypatch.setattr(clock, "_process_events", lambda e: taken_back.append(e) or process(e))
    clock.show(step=40, version=2, readout="step <b>40</b>", frame=7)
    assert (model.data.step, model.data.version, model.data.frame) == (40, 2, 7)
    assert model.data.readout == "step <b>40</b>"
    assert (clock.step, clock.version, clock.frame, clock.readout) == (40, 2, 7, "step <b>40</b>")
    assert changed[-1] == "frame" and set(changed) == {"step", "version", "readout", "frame"}
    assert taken_back == []
    clock.show(step=40, version=3, readout="step <b>40</b>", frame=8)  # two values change
    assert taken_back == [] and (model.data.version, model.data.frame) == (3, 8)

    model.data.readout = "typed on the page"  # as a change from the page arrives
    assert taken_back == [{"readout": "typed on the page"}]
    assert clock.readout == "typed on the page"


def test_patches_from_a_page_find_its_models_in_the_documents_own_index(monkeypatch):
    """``refer_lazily``: a page's patch (an acknowledgement, a control change, a model
    the page made) applies as with Bokeh's own deserializer, without indexing every
    model of the document again."""
    import json

    from bokeh.core.serialization import Serializer
    from bokeh.protocol import Protocol

    from gan2d.ui import clock

    clock.refer_lazily()
    indexed = []
    real = clock._document_index

    def spied(references):
        indexed.append(real(references))
        return indexed[-1]

    monkeypatch.setattr(clock, "_document_index", spied)
    doc, source, renderer, fresh = _a_page_and_a_new_model()
    events = [
        {"kind": "ModelChanged", "model": {"id": source.id}, "attr": "name", "new": "seen"},
        {
            "kind": "ModelChanged",
            "model": {"id": renderer.id},
            "attr": "data_source",
            "new": Serializer().encode(fresh),  # a model the page made: defined in full
        },
    ]
    header = json.dumps({"msgid": "1", "msgtype": "PATCH-DOC"})
    message = Protocol().assemble(header, "{}", json.dumps({"events": events}))
    index = doc.models._models
    message.apply_to_document(doc)
    assert source.name == "seen"
    assert renderer.data_source.id == fresh.id and list(renderer.data_source.data["x"]) == [3.0]
    assert doc.models.get_by_id(fresh.id) is renderer.data_source
    assert indexed and indexed[0] is index  # the document's own index, as it was


def test_open_pages_stay_out_of_full_collections_and_closed_ones_are_collected():
    """Once a page is built its objects are left out of Python's full garbage
    collections (with 30 pages open, each one stopped the whole server for about
    1.8 s); what a closed page leaves in reference cycles is still collected when
    the server releases memory after a close, and the pages still open stay out."""
    import gc
    import weakref

    class Model:  # a page's models refer to each other: cycles
        pass

    def page():
        model = Model()
        model.document = {"root": model}
        return model

    open_page, closed_page = page(), page()
    limits.keep_out_of_collections()  # what Lab.connect does
    tracked = {id(o) for o in gc.get_objects()}  # what a full collection walks
    assert id(open_page) not in tracked and id(closed_page.document) not in tracked
    gone = weakref.ref(closed_page)
    del closed_page
    gc.collect()
    assert gone() is not None  # frozen: a full collection does not even look at it
    limits.release_memory()  # a page closed (release_memory_soon)
    assert gone() is None
    assert id(open_page) not in {id(o) for o in gc.get_objects()}


def test_closings_get_their_memory_pass_within_the_delay_even_when_they_never_stop(monkeypatch):
    """Pages closed one after another (a class leaving, tabs reloaded) each get what
    they left collected within the delay: a steady stream of closings does not put
    the pass off for ever."""
    passes = []
    monkeypatch.setattr(limits, "release_memory", lambda: passes.append(time.monotonic()))
    start = time.monotonic()
    while time.monotonic() - start < 1.0:  # a close every 50 ms, for a second
        limits.release_memory_soon(delay=0.3)
        time.sleep(0.05)
    stopped = time.monotonic()
    wait_until(lambda: limits._release_timer is None, timeout=5)  # the last close's pass
    assert passes and passes[0] < stopped, "the first close waited for the stream to stop"
    assert len(passes) >= 2  # and again while they go on


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_memory_freed_by_closed_pages_goes_back_to_the_system():
    """After a class, the server hands back what its closed pages freed: the C
    allocator keeps freed memory for reuse unless asked (``release_memory``)."""
    import os

    release_memory = limits.release_memory
    release_memory()
    base = rss_mb(os.getpid())
    pieces = [bytearray(20_000) for _ in range(10_000)]  # 200 MB in pieces under the mmap size
    pin = bytearray(20_000)  # allocated last: the heap cannot shrink from its top by itself
    del pieces
    held = rss_mb(os.getpid())
    assert release_memory()
    after = rss_mb(os.getpid())
    assert held - base > 150 and after - base < 50, (base, held, after)
    del pin


# A closed page leaves most of its small Python objects freed between a few that live
# on (caches, the next page's), which is what this script does: with Python's own
# small-object allocator those freed objects stay with the process; through the C
# allocator (PYTHONMALLOC=malloc), ``release_memory`` hands them back.
SCATTERED = """
import os
from gan2d.ui.browser import rss_mb
from gan2d.ui.limits import release_memory
release_memory()
base = rss_mb(os.getpid())
objects = [{"x": i, "y": str(i)} for i in range(1_000_000)]
kept = objects[::1000]
del objects
held = rss_mb(os.getpid())
release_memory()
print(base, held, rss_mb(os.getpid()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
@pytest.mark.parametrize("allocator", ["malloc", "pymalloc"])
def test_the_c_allocator_returns_what_closed_pages_freed(allocator):
    import os
    import subprocess

    env = {**os.environ, "PYTHONMALLOC": allocator}
    out = subprocess.run(
        [sys.executable, "-c", SCATTERED], env=env, capture_output=True, text=True, timeout=120
    )
    base, held, after = map(float, out.stdout.split())
    assert held - base > 100, (base, held, after)
    returned = (held - after) / (held - base)
    if allocator == "malloc":  # what the README's class server setting gives
        assert returned > 0.8, (base, held, after)
    else:  # the default: why the README suggests it
        assert returned < 0.3, (base, held, after)


def test_the_frame_ceiling_benchmark_trains_every_session_as_the_app_does():
    """``benchmarks/frame_ceiling.py`` (the README's ceiling for a class) counts the
    frames the lab's own runs make for pages that cost nothing: each session gets
    frames, and each frame carries the steps it says."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from frame_ceiling import measure

    out = measure(sessions=3, speed=2, workers=1, seconds=1.5)
    assert out["sessions"] == 3 and out["workers"] == 1 and out["min_fps"] > 0
    frames_steps = out["frames_per_s"] * out["steps_per_frame"]
    assert 0.7 * frames_steps <= out["steps_per_s"] <= 1.3 * frames_steps, out


def test_the_settings_change_benchmark_times_both_ways_alone_and_busy():
    """``benchmarks/settings_change.py`` (the README's figures for a settings change with
    a busy event loop) times each way in each case and stops its busy thread."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from settings_change import measure

    threads = threading.active_count()
    out = measure("ns-gan", changes=2)
    for way in ("plain", "packed"):
        for case in ("alone", "busy"):
            timing = out[f"{way}_{case}"]
            assert 0 < timing["median_ms"] <= timing["p90_ms"], out
    wait_until(lambda: threading.active_count() == threads, timeout=5)
