"""The real app in a real browser: `panel serve app` + headless Debian Chromium.

One server for the module; each test opens its own page and ends by checking that the
page logged no errors and the server printed no traceback.
"""

from __future__ import annotations

import json
import re

import pytest
from helpers import wait_until

from gan2d.ui.browser import record_offsite

pytestmark = pytest.mark.browser

LOAD_MS = 120_000  # the first frame may wait for a compile on a busy 2-core CPU
FRAME_MS = 60_000

# JavaScript helpers, evaluated in the page (models are found by type, never by the
# minified class name; ColumnDataSource.data may be a Map of typed arrays).
JS_HELPERS = """
window.gan2dTest = {
  models() { return [...Bokeh.documents[0].all_models]; },
  column(source, name) {
    const d = source.data;
    return d instanceof Map ? d.get(name) : d[name];
  },
  fakeSource() {
    return this.models().find(m => m.type === 'ColumnDataSource' && m.name === 'fake');
  },
  firstFakeX() {
    const x = this.fakeSource() && this.column(this.fakeSource(), 'x');
    return x && x.length ? Number(x[0]) : null;
  },
  select(title) {
    return this.models().find(m => m.type.endsWith('Select') && m.title === title);
  },
  sliderLabelled(label) {
    // a DiscreteSlider is a column of a Div label ("lr d: <b>0.001</b>") and a Slider
    const columns = this.models().filter(m => m.children && m.children.length === 2);
    for (const c of columns) {
      const [div, slider] = c.children;
      if (div.type === 'Div' && slider.type === 'Slider' && div.text.startsWith(label + ':'))
        return {div, slider};
    }
    return null;
  },
  colorBarTitle() { return this.models().find(m => m.type === 'ColorBar').title; },
  curve(name) {
    // the chart source that has the column, as plain arrays: [steps, values]
    const source = this.models().find(m => m.type === 'ColumnDataSource' && this.column(m, name));
    return source ? [[...this.column(source, 'step')], [...this.column(source, name)]] : null;
  },
};
"""


def open_lab(page, url: str) -> None:
    page.goto(url, timeout=LOAD_MS)
    page.wait_for_function("window.Bokeh && Bokeh.documents.length > 0", timeout=LOAD_MS)
    page.evaluate(JS_HELPERS)
    page.wait_for_function("window.gan2d && window.gan2d.frames > 0", timeout=LOAD_MS)


def assert_clean(page, app_server) -> None:
    assert list(page.errors) == [], page.errors
    assert "Traceback" not in app_server.output(), app_server.output()


def test_page_loads_and_play_advances_steps_and_samples(lab_page, app_server):
    page = lab_page
    open_lab(page, app_server.url)
    assert page.locator(".gan2d-step").first.inner_text() == "0"
    x_before = page.evaluate("gan2dTest.firstFakeX()")
    assert x_before is not None
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.gan2d.step >= 50", timeout=FRAME_MS)
    page.wait_for_function(f"gan2dTest.firstFakeX() !== {x_before!r}", timeout=FRAME_MS)
    step_text = page.locator(".gan2d-step").first.inner_text()
    assert int(step_text.replace(",", "")) >= 50
    frames = page.evaluate("window.gan2d.frames")
    page.wait_for_function(f"window.gan2d.frames > {frames + 3}", timeout=FRAME_MS)
    page.get_by_role("button", name="Pause").click()
    # the loss chart has drawn points: numbers, one per frame's step, in order
    page.wait_for_function("gan2dTest.curve('d_loss')[0].length >= 2", timeout=FRAME_MS)
    steps, losses = page.evaluate("gan2dTest.curve('d_loss')")
    assert steps == sorted(steps) and steps[-1] >= 50
    assert all(isinstance(v, int | float) for v in losses)
    assert_clean(page, app_server)


def test_url_query_opens_with_those_settings(lab_page, app_server):
    page = lab_page
    # data fields only, so the default preset's compiled programs serve this link too
    open_lab(page, app_server.url + "?preset=wgan-gp&lr_d=0.0005&gp_weight=1.0&speed=5&seed=3")
    assert page.evaluate("gan2dTest.select('Preset').value") == "wgan-gp"
    assert page.evaluate("gan2dTest.select('loss').value") == "wgan-gp"
    assert "0.0005" in page.evaluate("gan2dTest.sliderLabelled('lr d').div.text")
    assert "<b>1</b>" in page.evaluate("gan2dTest.sliderLabelled('gp weight').div.text")
    assert "<b>5</b>" in page.evaluate("gan2dTest.sliderLabelled('steps per frame').div.text")
    assert page.get_by_text("Some link settings were ignored").count() == 0
    page.get_by_role("button", name="Step", exact=True).click()
    page.wait_for_function("window.gan2d.step === 1", timeout=FRAME_MS)
    search = page.evaluate("location.search")
    assert "seed=3" in search and "lr_d=0.0005" in search
    assert_clean(page, app_server)


def test_bad_query_value_shows_a_warning(lab_page, app_server):
    page = lab_page
    open_lab(page, app_server.url + "?lr_d=banana&width=99999&bogus=1")
    warning = page.get_by_text("Some link settings were ignored")
    warning.wait_for(state="visible", timeout=FRAME_MS)
    for needle in ("lr_d='banana' is not a number", "width=99999 is out of range", "'bogus'"):
        assert page.get_by_text(needle).first.is_visible(), needle
    assert page.evaluate("gan2dTest.select('loss').value") == "wgan-gp"  # defaults kept
    page.wait_for_function("!location.search.includes('banana')", timeout=FRAME_MS)
    assert_clean(page, app_server)


def test_classroom_link_hides_the_controls(lab_page, app_server):
    page = lab_page
    open_lab(page, app_server.url + "?hide=controls,hist")
    assert page.get_by_label("loss", exact=True).is_hidden()
    assert page.get_by_role("button", name="Play").is_visible()
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.gan2d.step > 0", timeout=FRAME_MS)
    page.get_by_role("button", name="Pause").click()
    assert_clean(page, app_server)


def test_loss_and_learning_rate_change_the_run_without_reload(lab_page, app_server):
    page = lab_page
    open_lab(page, app_server.url)
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.gan2d.step > 0", timeout=FRAME_MS)
    assert page.evaluate("gan2dTest.select('loss').value") == "wgan-gp"
    assert "W-critic" in page.evaluate("gan2dTest.colorBarTitle()")

    version = page.evaluate("window.gan2d.version")
    # the loss menu, as a user picks from it
    page.get_by_label("loss", exact=True).select_option("ns")
    page.wait_for_function(f"window.gan2d.version > {version}", timeout=FRAME_MS)
    page.wait_for_function("gan2dTest.colorBarTitle() === 'D(x) = P(real)'", timeout=FRAME_MS)

    # the critic's learning rate: one notch up on its slider, as a drag would do
    version = page.evaluate("window.gan2d.version")
    label = page.evaluate("gan2dTest.sliderLabelled('lr d').div.text")
    page.evaluate(
        "(() => { const s = gan2dTest.sliderLabelled('lr d').slider; s.value = s.value + 1; })()"
    )
    page.wait_for_function(f"window.gan2d.version > {version}", timeout=FRAME_MS)
    page.wait_for_function(
        f"gan2dTest.sliderLabelled('lr d').div.text !== {label!r}", timeout=FRAME_MS
    )
    new_lr = re.search(
        r"<b>([^<]+)</b>", page.evaluate("gan2dTest.sliderLabelled('lr d').div.text")
    )
    step = page.evaluate("window.gan2d.step")
    page.wait_for_function(f"window.gan2d.step > {step}", timeout=FRAME_MS)  # still running
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    page.wait_for_function(
        "location.search.includes('loss=ns') && "
        f"location.search.includes('lr_d={float(new_lr.group(1))!r}')",
        timeout=FRAME_MS,
    )
    page.get_by_role("button", name="Pause").click()
    assert_clean(page, app_server)


def test_no_tab_asks_another_host_for_anything_and_the_console_stays_quiet(lab_page, app_server):
    """A classroom network may have no internet: every asset comes from the server.
    Bokeh's warnings (an empty chart it cannot range, say) are console noise."""
    page = lab_page
    here = f"http://127.0.0.1:{app_server.port}/"
    offsite: list[str] = []
    warnings: list[str] = []
    record_offsite(page, here, offsite)
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    open_lab(page, app_server.url)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.gan2d.step >= 20", timeout=FRAME_MS)
    page.get_by_role("button", name="Pause").click()

    page.locator(".bk-tab", has_text="Theory").click()
    page.get_by_text("The xy game").first.wait_for(timeout=FRAME_MS)
    page.locator(".bk-tab", has_text="Compare").click()
    page.get_by_role("button", name="Play").first.click()
    page.get_by_text(re.compile(r"step [1-9][0-9,]* · 3 runs")).wait_for(timeout=LOAD_MS)
    # the runs play on behind another tab, then come back into view
    page.locator(".bk-tab", has_text="Lab").click()
    page.locator(".bk-tab", has_text="Compare").click()
    page.get_by_role("button", name="Pause").first.click()
    page.locator(".bk-tab", has_text="Sweep").click()
    page.get_by_role("button", name="Run sweep").click()
    page.get_by_text(re.compile(r"training 16 runs: step [1-9]")).wait_for(timeout=LOAD_MS)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("stopped at step").wait_for(timeout=FRAME_MS)
    assert offsite == []
    assert warnings == []
    assert_clean(page, app_server)


# hides (True) or shows the page's tab as a browser does when the user switches tabs
HIDE_TAB = """(hidden) => {
  Object.defineProperty(document, 'visibilityState',
    {value: hidden ? 'hidden' : 'visible', configurable: true});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_follow_the_teacher_then_make_it_mine(chromium, app_server):
    teacher_ctx = chromium.new_context(viewport={"width": 1600, "height": 1000})
    student_ctx = chromium.new_context(viewport={"width": 1600, "height": 1000})
    try:
        teacher, student = teacher_ctx.new_page(), student_ctx.new_page()
        errors = []
        for page in (teacher, student):
            page.on("pageerror", lambda e: errors.append(str(e)))
        open_lab(teacher, app_server.url)
        teacher.get_by_role("button", name="Share live").click()
        line = teacher.get_by_text(re.compile(r"Live: code [A-Z0-9]{6}"))
        line.wait_for(timeout=FRAME_MS)
        code = re.search(r"code ([A-Z0-9]{6})", line.inner_text()).group(1)
        teacher.get_by_role("button", name="Play").click()
        open_lab(student, f"{app_server.url}?follow={code}")
        student.get_by_text(f"Following the shared run {code}").wait_for(timeout=FRAME_MS)
        assert student.get_by_label("loss", exact=True).is_disabled()
        student.wait_for_function("window.gan2d.step >= 20", timeout=FRAME_MS)
        # the teacher's change shows on the student's page
        teacher.get_by_label("loss", exact=True).select_option("ns")
        student.wait_for_function("gan2dTest.select('loss').value === 'ns'", timeout=FRAME_MS)
        # the teacher switches to the slides: the class still watches the run train
        teacher.evaluate(HIDE_TAB, True)
        teacher.get_by_text("tab hidden: training goes on for your followers").wait_for(
            timeout=FRAME_MS
        )
        step = student.evaluate("window.gan2d.step")
        student.wait_for_function(f"window.gan2d.step > {step + 20}", timeout=FRAME_MS)
        teacher.evaluate(HIDE_TAB, False)
        teacher.get_by_role("button", name="Pause").click()
        # the follower's map shows the teacher's points (sent once for all followers)
        fakes = (
            "JSON.stringify(Array.from(Bokeh.documents[0].get_model_by_name('fake').data.x)"
            ".slice(0, 50))"
        )
        wait_until(lambda: student.evaluate(fakes) == teacher.evaluate(fakes), FRAME_MS / 1000)
        assert len(json.loads(student.evaluate(fakes))) == 50
        student.get_by_role("button", name="Make it mine").click()
        student.get_by_text("This lab is yours now, from step").wait_for(timeout=FRAME_MS)
        assert student.get_by_label("loss", exact=True).is_enabled()
        mine_from = student.evaluate("window.gan2d.step")
        student.get_by_role("button", name="Play").click()
        student.wait_for_function(f"window.gan2d.step > {mine_from}", timeout=FRAME_MS)
        student.get_by_role("button", name="Pause").click()
        # the teacher leaves (its run stops a moment after its tab closes): a follower
        # is told the run has ended, or, arriving later, that the code is gone
        teacher_ctx.close()
        late = student_ctx.new_page()
        late.goto(f"{app_server.url}?follow={code}", timeout=LOAD_MS)
        ended = re.compile(f"The shared run has ended|No live run has the code {code}")
        late.get_by_text(ended).wait_for(timeout=LOAD_MS)
        assert errors == []
        assert "Traceback" not in app_server.output()
    finally:
        student_ctx.close()


def test_a_hidden_tab_stops_training_and_resumes_when_shown(lab_page, app_server):
    page = lab_page
    open_lab(page, app_server.url)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.gan2d.step >= 10", timeout=FRAME_MS)
    page.evaluate(HIDE_TAB, True)
    page.get_by_text("tab hidden: training paused").wait_for(timeout=FRAME_MS)
    page.evaluate(HIDE_TAB, False)
    step = page.evaluate("window.gan2d.step")
    page.wait_for_function(f"window.gan2d.step > {step}", timeout=FRAME_MS)
    page.get_by_role("button", name="Pause").click()
    assert_clean(page, app_server)


def test_ten_sessions_at_once_each_get_a_lab(chromium, app_server):
    """No small cap on labs: the old server refused the fifth."""
    context = chromium.new_context(viewport={"width": 1200, "height": 800})
    try:
        pages = []
        for _ in range(10):
            page = context.new_page()
            page.goto(app_server.url, timeout=LOAD_MS)
            pages.append(page)
        for page in pages:
            page.wait_for_function("window.gan2d && window.gan2d.frames > 0", timeout=LOAD_MS)
            assert page.get_by_text("server is full").count() == 0
        pages[5].get_by_role("button", name="Play").click()
        pages[9].get_by_role("button", name="Play").click()
        for page in (pages[5], pages[9]):
            page.wait_for_function("window.gan2d.step >= 10", timeout=LOAD_MS)
    finally:
        context.close()
    assert "Traceback" not in app_server.output()


def test_the_presenter_view_fits_a_projector_and_copy_link_copies_the_run(chromium, app_server):
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        open_lab(page, app_server.url + "?preset=ns-gan&seed=4&present=1")
        readout = page.locator(".gan2d-readout").first
        size = float(readout.evaluate("el => parseFloat(getComputedStyle(el).fontSize)"))
        assert size >= 24  # readable from the back of a room
        assert page.get_by_label("loss", exact=True).is_hidden()  # the sidebar is folded
        boxes = [c.bounding_box() for c in page.locator("canvas").all()]
        field = max((b for b in boxes if b), key=lambda b: b["width"] * b["height"])
        assert field["y"] + field["height"] <= 720  # the map fits without scrolling
        assert readout.bounding_box()["y"] >= 0
        text = page.get_by_text("The non-saturating loss").first.bounding_box()
        assert text["y"] + text["height"] < 720  # and the preset's text beside it
        page.wait_for_function("location.search.includes('present=1')", timeout=FRAME_MS)
        page.get_by_role("button", name="Copy link").click()
        page.get_by_role("button", name="Link copied").wait_for(timeout=FRAME_MS)
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.evaluate("location.href")
        assert "seed=4" in copied and "present=1" in copied and "preset=ns-gan" in copied
    finally:
        context.close()
    assert "Traceback" not in app_server.output()
