"""The guide: a column beside the page that walks a lesson or holds a challenge.

A lesson (``?lesson=NAME&step=N``) shows its step's title, what to look at and one
question; Back and Next open the neighbouring step (its preset, settings, speed, hidden
items and tab) in the lab. A challenge (``?challenge=NAME``) shows its task, the target
and the settings that may change (the others are hidden and locked); the lab checks
the target on every frame with the live metrics, and when they meet it (or the budget
is spent) confirms it on the protocol's 2,500 samples (``gan2d.challenges.score``).
Passing shows the step it took and a link to the solution. The guide sits outside the
page's tabs, so its text stays in view on whichever tab a step opens, and its column
is where the presenter view's text goes.
"""

from __future__ import annotations

import html

import panel as pn

from gan2d.challenges import CHALLENGES, Challenge, score
from gan2d.lessons import LESSONS, Lesson
from gan2d.ui import settings as ls

GUIDE_PX, PRESENT_GUIDE_PX = 340, 380
GUIDE_CSS = """
:host { line-height: 1.45; }
h3 { margin: 0.2em 0 0.3em 0; font-size: 1.2em; }
.gan2d-q { background: #fff9db; border-left: 4px solid #fab005; padding: 6px 10px; }
.gan2d-pass { background: #ebfbee; border-left: 4px solid #2f9e44; padding: 6px 10px; }
.gan2d-fail { background: #fff5f5; border-left: 4px solid #e03131; padding: 6px 10px; }
.gan2d-small { color: #495057; font-size: 0.9em; }
"""
TEXT_SIZE, PRESENT_TEXT_SIZE = "16px", "25px"  # the presenter view: read from a room's back
INDEX_LABEL = "Lessons and challenges"


def index_items() -> list[tuple[str, str]]:
    """The index menu: every lesson, then every challenge (label, key)."""
    items = [(f"Lesson: {lesson.title}", f"lesson:{name}") for name, lesson in LESSONS.items()]
    items += [(f"Challenge: {c.title}", f"challenge:{name}") for name, c in CHALLENGES.items()]
    return items


def _e(text) -> str:
    return html.escape(str(text))


class Guide:
    """The lesson or challenge a lab is in, and the column that shows it."""

    def __init__(self, lab):
        self.lab = lab
        self.tabs = None  # the page's tabs, a ``page.PageTabs`` (set by the page)
        self.text = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[GUIDE_CSS])
        self.back = pn.widgets.Button(label="‹ Back", width=80)
        self.next = pn.widgets.Button(label="Next ›", color="primary", width=80)
        self.fold = pn.widgets.Button(label="Hide text", width=85, color="light")
        self.close_button = pn.widgets.Button(label="Close", width=65, color="light")
        self.unfold = pn.widgets.Button(label="Show the lesson", color="primary", visible=False)
        self.back.on_click(lambda e: self._guarded(self.go, -1))
        self.next.on_click(lambda e: self._guarded(self.go, +1))
        self.fold.on_click(lambda e: self.set_folded(True))
        self.unfold.on_click(lambda e: self.set_folded(False))
        self.close_button.on_click(lambda e: self._guarded(self.close))
        self.body = pn.Column(
            self.text,
            pn.Row(self.back, self.next, self.fold, self.close_button),
            sizing_mode="stretch_width",
        )
        self.panel = pn.Column(
            self.body,
            self.unfold,
            width=GUIDE_PX,
            visible=False,
            styles={"border-right": "1px solid #dee2e6", "padding-right": "8px"},
            css_classes=["gan2d-guide"],
        )
        self.index = pn.widgets.MenuButton(
            label=INDEX_LABEL, items=index_items(), color="light", width=210
        )
        self.index.on_click(lambda e: self._guarded(self.open_item, e.new))
        # a challenge's progress: None, "checking", "passed", "failed"
        self._status: str | None = None
        self._result: dict | None = None
        self._run_id = None
        self._check_after = 0  # the next live pass is checked from this step on
        self._size = TEXT_SIZE
        self._body = ""
        self._read_only = False  # a follower's: the teacher walks the steps

    # ------------------------------------------------------------------ opening
    def _guarded(self, fn, *args):
        self.lab.notice.guard(fn)(*args)

    def open_item(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "lesson":
            self.open_lesson(name, 1)
        else:
            self.open_challenge(name)

    def open_lesson(self, name: str, step: int) -> None:
        lab = self.lab
        lab.lesson, lab.lesson_step, lab.challenge = name, step, None
        lab.open_base(ls.lesson_base(name, step), play=self.lesson.steps[step - 1].play)
        self.show()

    def open_challenge(self, name: str) -> None:
        lab = self.lab
        lab.lesson, lab.challenge = None, name
        lab.open_base(ls.challenge_base(name), play=False)
        self.show()

    def go(self, delta: int) -> None:
        lesson = self.lesson
        step = min(max(self.lab.lesson_step + delta, 1), len(lesson.steps))
        if step != self.lab.lesson_step:
            self.open_lesson(lesson.name, step)

    def close(self) -> None:
        """Leave the lesson or challenge; the run and its settings stay."""
        lab = self.lab
        lab.lesson, lab.challenge = None, None
        self.show()
        lab.guide_changed()

    @property
    def lesson(self) -> Lesson | None:
        return LESSONS.get(self.lab.lesson) if self.lab.lesson else None

    @property
    def challenge(self) -> Challenge | None:
        return CHALLENGES.get(self.lab.challenge) if self.lab.challenge else None

    # ------------------------------------------------------------------ showing
    def show(self) -> None:
        """Draw the column for the lab's lesson step or challenge (or hide it), and
        bring the step's tab forward."""
        lesson, challenge = self.lesson, self.challenge
        self.panel.visible = bool(lesson or challenge)
        self.back.visible = self.next.visible = lesson is not None and not self._read_only
        self.close_button.visible = not self._read_only
        self.fold.visible = True
        if lesson is not None:
            n, i = len(lesson.steps), self.lab.lesson_step
            self.back.disabled, self.next.disabled = i <= 1, i >= n
            self._set_text(self._lesson_html(lesson, i))
            self.unfold.name = "Show the lesson"
            self._select_tab(lesson.steps[i - 1].tab)
        elif challenge is not None:
            self._status, self._result, self._run_id = None, None, None
            self._set_text(self._challenge_html(challenge, None))
            self.unfold.name = "Show the challenge"
            self._select_tab("Lab")
        self.lab.set_focus(lesson.steps[self.lab.lesson_step - 1].plot if lesson else None)

    def set_read_only(self, read_only: bool) -> None:
        """A follower reads the teacher's step; it cannot walk, close or change it."""
        self._read_only = read_only
        self.index.disabled = read_only
        self.show()

    def set_folded(self, folded: bool) -> None:
        self.body.visible = not folded
        self.unfold.visible = folded
        self.panel.width = 170 if folded else GUIDE_PX

    def set_presenting(self, on: bool) -> None:
        self._size = PRESENT_TEXT_SIZE if on else TEXT_SIZE
        self.panel.width = PRESENT_GUIDE_PX if on else GUIDE_PX
        self._set_text(self._body)

    def _set_text(self, body: str) -> None:
        self._body = body
        self.text.object = f'<div style="font-size:{self._size}">{body}</div>'

    def _select_tab(self, where: str) -> None:
        if self.tabs is not None:
            self.tabs.select(where)

    def _lesson_html(self, lesson: Lesson, i: int) -> str:
        step = lesson.steps[i - 1]
        top, _, inner = step.tab.partition("/")
        if top == "Lab":
            look = f"{ls.PLOTS[step.plot]} (Lab tab)"
        else:
            look = f"the {inner} tab, on {top}" if inner else f"the {top} tab"
        return (
            f'<div class="gan2d-small">Lesson: {_e(lesson.title)} · step {i} of '
            f"{len(lesson.steps)}</div><h3>{_e(step.title)}</h3><p>{_e(step.text)}</p>"
            f'<p class="gan2d-q"><b>Question.</b> {_e(step.question)}</p>'
            f'<div class="gan2d-small">Look at: {_e(look)}</div>'
        )

    def _challenge_html(self, c: Challenge, live: dict | None) -> str:
        allowed = ", ".join(a.replace("_", " ") for a in c.allowed)
        parts = [
            f'<div class="gan2d-small">Challenge</div><h3>{_e(c.title)}</h3>',
            f"<p>{_e(c.task)}</p>",
            f'<p class="gan2d-q"><b>Target:</b> {_e(c.target)}.<br>'
            f"<b>You may change:</b> {_e(allowed)} (and the seed). Any change restarts "
            "the run.</p>",
        ]
        if c.hint:
            parts.append(f"<details><summary>A hint</summary>{_e(c.hint)}</details>")
        locked = c.check_settings(self.lab.config)
        if locked:
            parts.append(
                f'<p class="gan2d-fail">This run changes {_e(", ".join(locked))}, which the '
                "challenge keeps fixed: it does not count. Reopen the challenge to start "
                "again.</p>"
            )
        elif self._status == "passed":
            r = self._result
            parts.append(
                f'<p class="gan2d-pass"><b>Passed at step {r["step"]:,}</b> '
                f"(of {c.budget:,}): {_e(_scores_text(r['got']))} on the protocol's 2,500 "
                f'samples.<br><a href="{_e(r["link"])}" target="_blank">A link to your '
                "solution</a> (it opens this challenge with your settings).</p>"
            )
        elif self._status == "failed":
            r = self._result
            parts.append(
                f'<p class="gan2d-fail"><b>Not yet:</b> at step {r["step"]:,} the protocol '
                f"gives {_e(_scores_text(r['got']))}. Change a setting (the run restarts) "
                "and try again.</p>"
            )
        elif self._status == "checking":
            parts.append('<p class="gan2d-small">Checking on 2,500 samples…</p>')
        if live is not None and self._status != "passed":
            parts.append(f'<p class="gan2d-small">Now (live): {_e(_scores_text(live))}</p>')
        return "".join(parts)

    # ------------------------------------------------------------------ a challenge's checks
    def on_frame(self, frame) -> None:
        """Each frame of a challenge's run: check the target live; confirm a live pass,
        or the end of the budget, on the protocol."""
        c = self.challenge
        if c is None or self.lab.runner is None:
            return
        if frame.run_id != self._run_id:  # a new attempt
            self._run_id, self._status, self._result = frame.run_id, None, None
            self._check_after = 0
        live = _live_scores(frame)
        if self._status in (None, "failed") and not c.check_settings(frame.config):
            at_end = frame.step >= c.budget
            if (
                at_end
                and self._status is None
                or (c.met(live) and frame.step >= self._check_after and not at_end)
            ):
                self._confirm()
        self._set_text(self._challenge_html(c, live))

    def _confirm(self) -> None:
        """Ask the run for a copy of its state, to score on the protocol."""
        self._status = "checking"
        run_id = self._run_id
        self.lab.runner.request_copy(
            lambda config, runs, state: self._receive_copy(run_id, config, state)
        )

    def _receive_copy(self, run_id, config, state) -> None:
        """On a worker: score the copy by the protocol, then report on the page's loop."""
        from gan2d.core.runs import run_state

        one = run_state(state, 0)
        step = int(one["step"])
        try:
            got = score(config, one)
        except Exception as err:  # reported on the page; the run goes on
            got = {"error": f"{type(err).__name__}: {err}"}
        self.lab.on_loop(lambda: self._checked(run_id, config, step, got))

    def _checked(self, run_id, config, step: int, got: dict) -> None:
        c = self.challenge
        if c is None or self._status != "checking" or run_id != self._run_id:
            return  # the challenge was left, or the run restarted, meanwhile
        if "error" in got:
            self._status = None
            self.lab.notice.show(
                "warning", f"The challenge could not check the run: {got['error']}"
            )
            return
        if c.met(got) and step <= c.budget:
            s = self.lab.settings
            query = ls.make_query(c.preset, config, s.speed, s.hide, challenge=c.name)
            self._status = "passed"
            self._result = {"step": step, "got": got, "link": self.lab.page_url(query)}
            self.lab.pause()
        else:
            self._status = "failed" if step >= c.budget else None
            self._result = {"step": step, "got": got}
            self._check_after = step + 250  # live numbers are noisy: check again later
            if self._status is None and self.lab.shown_step >= c.budget:
                self._confirm()  # the budget ran out while this check was on its way
        self._set_text(self._challenge_html(c, None))


def _live_scores(frame) -> dict:
    snap = frame.snap
    live = {"w1": float(snap["sliced_w1"])}
    if "live_modes" in snap:
        live.update(modes=int(snap["live_modes"]), hq=float(snap["live_hq"]))
    return live


def _scores_text(scores: dict) -> str:
    parts = []
    if scores.get("modes") is not None:
        parts.append(f"modes {scores['modes']}")
    if scores.get("hq") is not None:
        parts.append(f"HQ {scores['hq']:.0f}%")
    if scores.get("w1") is not None:
        parts.append(f"W1 {scores['w1']:.3f}")
    return ", ".join(parts) or "diverged"
