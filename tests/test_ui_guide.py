"""Lessons, challenges and the presenter view in a real browser, from their links."""

from __future__ import annotations

import pytest
from test_ui_browser import FRAME_MS, assert_clean, open_lab

pytestmark = pytest.mark.browser

CHALLENGE_MS = 120_000  # a solution passes within a few thousand steps on a 2-core CPU


def test_a_lesson_link_opens_its_step_and_next_and_back_change_the_settings(lab_page, app_server):
    page = lab_page
    open_lab(page, app_server.url + "?lesson=vanishing-gradients&step=2")
    guide = page.locator(".gan2d-guide")
    assert guide.get_by_text("Freeze the generator").is_visible()
    assert guide.get_by_text("step 2 of 4").is_visible()
    assert page.get_by_label("loss", exact=True).is_hidden()  # the lesson hides the controls
    assert page.evaluate("gan2dTest.select('loss').value") == "minimax"
    page.get_by_role("button", name="Next ›").click()
    guide.get_by_text("The non-saturating loss").wait_for(timeout=FRAME_MS)
    page.wait_for_function("gan2dTest.select('loss').value === 'ns'", timeout=FRAME_MS)
    page.wait_for_function("location.search.includes('step=3')", timeout=FRAME_MS)
    page.get_by_role("button", name="‹ Back").click()
    page.wait_for_function("gan2dTest.select('loss').value === 'minimax'", timeout=FRAME_MS)
    page.wait_for_function("location.search.includes('step=2')", timeout=FRAME_MS)
    page.get_by_role("button", name="Hide text").click()
    guide.get_by_text("Freeze the generator").wait_for(state="hidden", timeout=FRAME_MS)
    page.get_by_role("button", name="Show the lesson").click()
    guide.get_by_text("Freeze the generator").wait_for(timeout=FRAME_MS)
    assert_clean(page, app_server)


def test_a_lesson_step_on_the_theory_tab_opens_that_tab(lab_page, app_server):
    page = lab_page
    page.goto(app_server.url + "?lesson=why-wasserstein&step=1")
    page.get_by_text("Divergences of a shifted copy").wait_for(timeout=FRAME_MS)
    assert page.locator(".gan2d-guide").get_by_text("JS saturates").is_visible()
    assert_clean(page, app_server)


def test_a_challenge_locks_its_settings_and_says_when_a_solution_passes(lab_page, app_server):
    page = lab_page
    open_lab(page, app_server.url + "?challenge=spiral&width=64&depth=3")
    guide = page.locator(".gan2d-guide")
    assert guide.get_by_text("A network big enough for the spiral").is_visible()
    assert page.get_by_label("loss", exact=True).is_hidden()  # locked: not on offer
    assert page.get_by_label("activation", exact=True).is_visible()  # may change
    page.get_by_role("button", name="Play").click()
    guide.get_by_text("Passed at step").wait_for(timeout=CHALLENGE_MS)
    link = guide.get_by_role("link", name="A link to your solution").get_attribute("href")
    assert "challenge=spiral" in link and "width=64" in link and "depth=3" in link
    assert "(budget)" in page.locator(".gan2d-readout").first.inner_text()
    assert_clean(page, app_server)


def test_the_presenter_view_of_a_lesson_fits_a_projector(chromium, app_server):
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        open_lab(page, app_server.url + "?lesson=vanishing-gradients&step=1&present=1")
        guide = page.locator(".gan2d-guide")
        text = guide.get_by_text("The saturating minimax loss")
        size = float(text.evaluate("el => parseFloat(getComputedStyle(el).fontSize)"))
        assert size >= 24  # the lesson text, large
        question = guide.get_by_text("By how many powers of ten").bounding_box()
        assert question["x"] >= 0 and question["y"] + question["height"] <= 720
        boxes = [c.bounding_box() for c in page.locator("canvas").all()]
        visible = [b for b in boxes if b and b["width"] > 300 and b["y"] + b["height"] <= 720]
        # the map and the chart the step talks about (gradient norms), both above the fold
        assert len(visible) >= 2, boxes
        assert all(b["x"] + b["width"] <= 1280 for b in visible)
    finally:
        context.close()
    assert "Traceback" not in app_server.output()
