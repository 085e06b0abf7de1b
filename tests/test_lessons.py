"""Lessons are data: every step must open (its settings validate at the lab's size) and
every tab, plot and control it names must exist on the page."""

from __future__ import annotations

import pytest

from gan2d.lessons import LESSONS, TABS, THEORY_TABS
from gan2d.presets import PRESETS
from gan2d.ui import settings as ls
from gan2d.ui.lab import Lab

STEPS = [(name, i) for name, lesson in LESSONS.items() for i in range(1, len(lesson.steps) + 1)]


def test_there_are_five_lessons_of_short_steps():
    assert len(LESSONS) >= 5
    for lesson in LESSONS.values():
        assert 3 <= len(lesson.steps) <= 8
        for step in lesson.steps:
            assert step.question.endswith("?")
            assert 1 <= step.text.count(". ") + 1 <= 4  # two or three sentences, or four


@pytest.mark.parametrize("name, i", STEPS)
def test_every_step_opens_and_names_what_exists(name, i):
    step = LESSONS[name].steps[i - 1]
    base = ls.lesson_base(name, i)  # raises if a setting is not valid
    assert base.preset in PRESETS and base.speed in ls.SPEEDS
    assert set(step.hide) <= ls.hide_names()
    assert step.plot in ls.PLOTS
    top, _, inner = step.tab.partition("/")
    assert top in TABS and (not inner or inner in THEORY_TABS)
    query = ls.make_query(
        base.preset, base.config, base.speed, list(base.hide), lesson=name, step=i
    )
    assert query == {"lesson": name, "step": str(i)}  # the link of a step is its name
    parsed = ls.parse_query(query)
    assert parsed.warnings == [] and parsed.config == base.config


def test_the_tab_names_are_the_pages():
    from gan2d.ui.page import build_page

    page = build_page()
    guide_column, tabs = page
    assert tuple(tabs._names) == TABS
    assert not tabs[1].objects  # built when first shown
    tabs.active = 1
    assert tuple(tabs[1][0]._names) == THEORY_TABS
    assert not guide_column.visible  # no lesson in the link: no column


def test_next_and_back_walk_the_steps_and_change_the_settings():
    lab = Lab(query={"lesson": "mode-collapse"})
    assert lab.guide.panel.visible and "step 1 of 6" in lab.guide.text.object
    assert lab.guide.back.disabled and not lab.guide.next.disabled
    assert (lab.settings.preset, lab.config.optimizer) == ("vanilla-collapse", "sgd")
    lab.guide.next.clicks += 1
    assert lab.lesson_step == 2 and lab.config.optimizer == "adam" and lab.config.lr_g == 1e-3
    assert lab.query() == {"lesson": "mode-collapse", "step": "2"}
    assert "The chase" in lab.guide.text.object and lab.settings.hide == ["controls"]
    lab.guide.back.clicks += 1
    assert lab.lesson_step == 1 and lab.config.optimizer == "sgd"
    lab.guide.close_button.clicks += 1
    assert not lab.guide.panel.visible and "lesson" not in lab.query()


def test_the_index_opens_any_lesson_or_challenge():
    lab = Lab()
    keys = [key for _, key in lab.guide.index.items]
    assert len([k for k in keys if k.startswith("lesson:")]) == len(LESSONS)
    lab.guide.open_item("lesson:why-wasserstein")
    assert lab.query() == {"lesson": "why-wasserstein", "step": "1"}
    lab.guide.open_item("challenge:clip-w1")
    assert lab.query() == {"challenge": "clip-w1"} and lab.widgets["loss"].disabled
    assert not lab.widgets["clip"].disabled and lab.preset_select.disabled
    lab.guide.close_button.clicks += 1  # leaving it unlocks everything and lifts the budget
    assert not lab.widgets["loss"].disabled and not lab.preset_select.disabled
    assert lab._stop_at is None and "challenge" not in lab.query()


def test_the_presenter_view_gives_the_lessons_column_the_text_and_moves_its_chart_up():
    lab = Lab(query={"lesson": "vanishing-gradients", "present": "1"})
    assert not lab.explain_side.visible  # the lesson's text replaces the preset's
    assert lab.focus_slot.objects == [lab.plot_panes["grads"]]
    assert lab.curve_slots["grads"].objects == []
    lab.guide.close()
    assert lab.explain_side.visible and lab.focus_slot.objects == []
    assert lab.curve_slots["grads"].objects == [lab.plot_panes["grads"]]
