"""Follow the teacher, without a browser: a follower sees the teacher's run read-only,
its changes as they are made, and "Make it mine" continues that exact state in a run of
the follower's own; a code that does not exist or has ended says so."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from helpers import wait_until

from gan2d.ui import settings as ls
from gan2d.ui.lab import Lab
from gan2d.ui.share import SHARES, valid_code

TINY = {"loss": "ns", "width": "16", "depth": "1", "batch_size": "32", "speed": "5"}


def shown(lab: Lab) -> int:
    """Push what is waiting and acknowledge it, as a page that paints at once."""
    lab._push()
    lab._on_ack(SimpleNamespace(data=lab._frame_no))
    return lab._frame_no


def teacher_with_share() -> Lab:
    teacher = Lab(query=TINY)
    teacher.connect()
    wait_until(lambda: shown(teacher) >= 1)
    teacher._share_live()
    assert valid_code(teacher.share.code) and "follow=" in teacher.share_line.value
    return teacher


def test_a_follower_watches_the_teachers_run_read_only_and_sees_its_changes():
    teacher = teacher_with_share()
    follower = Lab(query={"follow": teacher.share.code.lower()})  # codes read aloud: any case
    try:
        follower.connect()
        assert follower.following is teacher.share and follower.runner is None
        assert follower.config == teacher.config
        assert follower.widgets["loss"].disabled and follower.transport.toggle.disabled
        assert not follower.share_button.visible and follower.follow_bar.visible
        assert follower.query() == {"follow": teacher.share.code}
        teacher.runner.play()
        wait_until(lambda: shown(teacher) and teacher.share.number > 2)
        wait_until(lambda: shown(teacher) and shown(follower) >= 2)  # both pages paint
        assert follower.clock.step > 0
        assert teacher.share.followers == 1
        # the teacher changes the loss: the follower's controls show it
        teacher.settings.loss = "hinge"
        wait_until(lambda: shown(teacher) and shown(follower) and follower.config.loss == "hinge")
        assert follower.widgets["loss"].value == "hinge"
        # what a follower does to its own controls never reaches the teacher's run
        follower.settings.lr_d = 0.01
        assert teacher.config.lr_d != 0.01
    finally:
        follower.close()
        teacher.close()


def test_a_follower_reads_the_teachers_lesson_step_as_the_teacher_walks_the_steps():
    teacher = Lab(query={"lesson": "loss-is-not-quality"})
    teacher.connect()
    wait_until(lambda: shown(teacher) >= 1)
    teacher._share_live()
    follower = Lab(query={"follow": teacher.share.code})
    try:
        follower.connect()
        guide = follower.guide
        assert guide.panel.visible and "step 1 of 4" in guide.text.object
        assert guide.text.object == teacher.guide.text.object
        # the teacher walks the steps; a follower reads them
        assert not (guide.next.visible or guide.back.visible or guide.close_button.visible)
        assert guide.index.disabled
        teacher.guide.next.clicks += 1
        follower._tick()
        assert "step 2 of 4" in guide.text.object
        wait_until(lambda: shown(teacher) and shown(follower) and follower.config == teacher.config)
        teacher.guide.close_button.clicks += 1
        follower._tick()
        assert not guide.panel.visible
        # made its own, the lab is the student's: the lesson's buttons come back
        teacher.guide.open_lesson("loss-is-not-quality", 3)
        follower._tick()
        follower._make_it_mine()
        wait_until(lambda: follower.runner is not None)
        assert "step 3 of 4" in guide.text.object and guide.next.visible
        assert not guide.index.disabled
    finally:
        follower.close()
        teacher.close()


def test_make_it_mine_continues_the_exact_state_in_a_run_of_ones_own():
    teacher = teacher_with_share()
    follower = Lab(query={"follow": teacher.share.code})
    try:
        follower.connect()
        teacher.runner.play()
        wait_until(lambda: shown(teacher) and teacher.clock.step >= 20)
        teacher.runner.pause()
        # a chunk in flight when Pause is pressed still lands: the frame that shows the
        # pause (made after it) is the step the teacher's page stands at
        wait_until(lambda: shown(teacher) and teacher._last_frame.frame_steps is None)
        step = teacher.clock.step
        assert int(teacher.runner._state["step"][0]) == step
        teacher_g = np.asarray(teacher.runner._state["g"][0]["w"])
        follower._make_it_mine()
        wait_until(lambda: follower.runner is not None)
        assert follower.following is None and not follower.widgets["loss"].disabled
        wait_until(lambda: (follower._tick(), f"step {step:,}" in follower.notice.text)[1])
        assert "yours now" in follower.notice.text
        wait_until(lambda: shown(follower) and follower.clock.step == step)
        np.testing.assert_array_equal(np.asarray(follower.runner._state["g"][0]["w"]), teacher_g)
        # its own now: it trains on while the teacher's run stays where it was
        follower.runner.play()
        wait_until(lambda: shown(follower) and follower.clock.step > step)
        assert int(teacher.runner._state["step"][0]) == step
        assert "follow" not in follower.query()
    finally:
        follower.close()
        teacher.close()


def test_when_the_teacher_leaves_followers_are_told_and_keep_their_frame():
    teacher = teacher_with_share()
    code = teacher.share.code
    follower = Lab(query={"follow": code})
    follower.connect()
    wait_until(lambda: shown(follower) >= 1)
    teacher.close()
    follower._tick()
    assert follower.following is None and "has ended" in follower.follow_line.value
    assert follower.mine_button.disabled and follower._last_frame is not None
    late = Lab(query={"follow": code})  # the code is gone
    assert late.following is None and "No live run has the code" in late.notice.text
    follower.close()
    late.close()


def test_a_malformed_follow_code_is_a_warning_and_the_page_is_a_lab():
    parsed = ls.parse_query({"follow": "../etc"})
    assert parsed.follow is None and "not a share code" in parsed.warnings[0]
    assert SHARES.get("ZZZZZZ") is None


def _frames(wire: bytes) -> list[tuple[bool, bytes]]:
    """Split bytes written on a websocket into (binary?, payload) frames (RFC 6455)."""
    import struct

    out, i = [], 0
    while i < len(wire):
        first, second = wire[i], wire[i + 1]
        assert first & 0x80 and not second & 0x80  # final, unmasked
        n, i = second & 0x7F, i + 2
        if n == 126:
            (n,), i = struct.unpack("!H", wire[i : i + 2]), i + 2
        elif n == 127:
            (n,), i = struct.unpack("!Q", wire[i : i + 8]), i + 8
        out.append((first & 0x0F == 0x2, wire[i : i + n]))
        i += n
    return out


def _over_the_wire(wire: bytes):
    """The message a page's websocket reads from ``wire``, ready to apply."""
    import json

    from bokeh.protocol import Protocol

    frames = _frames(wire)
    assert [binary for binary, _ in frames[:3]] == [False] * 3
    got = Protocol().assemble(*(data.decode() for _, data in frames[:3]))
    pairs = frames[3:]
    assert len(pairs) == 2 * got.header.get("num_buffers", 0)
    for (head_binary, head), (binary, data) in zip(pairs[::2], pairs[1::2], strict=True):
        assert not head_binary and binary
        got.assemble_buffer(json.loads(head), data)
    return got


def _a_served_page(doc):
    """``doc`` as a session's page during one of its callbacks, with one connection
    whose writes are kept: (the connection's writes, the session's context)."""
    import weakref

    writes: list[bytes] = []
    stream = SimpleNamespace(write=writes.append)
    ws = SimpleNamespace(stream=stream, _compressor=None, mask_outgoing=False)
    ws.is_closing = lambda: False
    connection = SimpleNamespace(_socket=SimpleNamespace(ws_connection=ws))
    session = SimpleNamespace(_pending_writes=[], _subscribed_connections=[connection])
    context = type("Context", (), {"_session": session})()  # (weakly referred to)
    doc._session_context = weakref.ref(context)
    return writes, context  # (the context must outlive the test's use of doc)


def test_a_frames_changes_reach_its_page_as_one_message_in_one_write():
    """What showing a frame changes on a page (its points, its ranges, its clock) goes
    to the page as one patch message written at once, which the page applies as it
    stands; Bokeh does not send those changes again. While Panel has writes of its own
    waiting for the page, nothing is written ahead of them (the changes are left to
    Panel's usual path)."""
    from bokeh.document import Document
    from bokeh.models import ColumnDataSource, Range1d
    from panel.io.document import _WRITE_BLOCK

    from gan2d.ui.clock import FrameClock
    from gan2d.ui.feed import one_message

    doc = Document()
    source, x_range = ColumnDataSource({"x": [0.0], "y": [0.0]}), Range1d(0, 1)
    clock = FrameClock._data_model()
    for model in (source, x_range, clock):
        doc.add_root(model)
    page = Document.from_json(doc.to_json())  # the page's copy, made when it loaded
    writes, _context = _a_served_page(doc)
    later: list = []
    doc.on_change(later.append)  # what Bokeh would still send after the callback

    with one_message(doc):
        source.data = {"x": np.linspace(0, 1, 300), "y": np.linspace(1, 2, 300)}
        x_range.end = 3.0
        clock.update(step=40, frame=7)

    assert len(writes) == 1 and later == []
    message = _over_the_wire(writes[0])
    assert message.msgtype == "PATCH-DOC"
    message.apply_to_document(page)
    seen = page.get_model_by_id(source.id)
    assert np.allclose(seen.data["y"], np.linspace(1, 2, 300))
    assert page.get_model_by_id(x_range.id).end == 3.0
    assert (page.get_model_by_id(clock.id).step, page.get_model_by_id(clock.id).frame) == (40, 7)

    _WRITE_BLOCK[doc] = True  # Panel is writing to the page: wait, as Panel does
    try:
        with one_message(doc):
            x_range.end = 4.0
    finally:
        del _WRITE_BLOCK[doc]
    assert len(writes) == 1  # nothing went ahead of Panel's writes


def test_the_feeds_patches_bring_every_followers_plots_to_the_shared_runs():
    """A shared run's feed makes each frame's patch once; the same bytes, read as a
    page's websocket reads them and applied to any follower page's plots (the fed
    models share their ids), show what the feed shows: map, curves (streamed),
    histogram, ranges and colour scale."""
    from bokeh.document import Document
    from bokeh.layouts import column

    from gan2d.ui.clock import FrameClock
    from gan2d.ui.feed import CLOCK_ID, share_ids
    from gan2d.ui.plots import LabPlots

    teacher = teacher_with_share()
    teacher.runner.play()
    feed = teacher.share.feed()
    visible = {"field": True, "manifold": True, "hist": True}
    pages = []
    for _ in range(2):
        plots = LabPlots()
        share_ids(plots)
        doc = Document()
        doc.add_root(column(*plots.figures().values()))
        clock = FrameClock._data_model()  # the page's frame clock, as a follower has it
        clock._id = CLOCK_ID
        doc.add_root(clock)
        pages.append((plots, doc, clock))
    number, had = 0, None
    try:
        for _ in range(25):
            after = number
            wait_until(lambda: shown(teacher) and teacher.share.latest(after) is not None)  # noqa: B023
            number, frame = teacher.share.latest(after)
            feed.advance(number, frame, visible, lambda: f"step {frame.step}")  # noqa: B023
            patches = None if had is None else feed.since(had)
            for plots, doc, _clock in pages:
                if patches is None:  # a page's first frame: the feed's plots as they are
                    plots.copy_from(feed.plots)
                    continue
                for _message, wire in patches:  # the bytes every follower's page reads
                    _over_the_wire(wire).apply_to_document(doc)
            had = feed.number
    finally:
        teacher.close()
    assert feed.since(had) == [] and len(feed.plots.loss_src.data["step"]) > 10
    for plots, _doc, clock in pages:
        assert (clock.frame, clock.step) == (feed.number, feed.frame.step)
        assert clock.readout == f"step {feed.frame.step}"
        mine = plots.fed_models()
        for key, (model, attrs) in feed.plots.fed_models().items():
            for attr in attrs:
                want, got = getattr(model, attr), getattr(mine[key][0], attr)
                if attr != "data":
                    assert got == want, (key, attr)
                    continue
                assert list(got) == list(want), key
                for column_name in want:
                    np.testing.assert_array_equal(
                        np.asarray(got[column_name], float), np.asarray(want[column_name], float)
                    )


def test_a_shared_run_goes_at_its_fastest_pages_pace():
    """Followers that keep painting get new frames even while the teacher's own page
    takes none (a slow projector laptop must not slow the class)."""
    teacher = teacher_with_share()
    follower = Lab(query={"follow": teacher.share.code})
    try:
        follower.connect()
        teacher.runner.play()
        wait_until(lambda: shown(teacher) >= 2)  # then the teacher's page paints no more
        # (its acknowledgement may have brought one more frame, if one was ready: that one
        # it never acknowledges, so it gets no other)
        teachers_frame = teacher.clock.frame
        steps = set()

        def painted_steps() -> int:
            shown(follower)
            steps.add(follower.clock.step)
            return len(steps)

        wait_until(lambda: painted_steps() > 6)
        assert teacher.clock.frame == teachers_frame
    finally:
        follower.close()
        teacher.close()
