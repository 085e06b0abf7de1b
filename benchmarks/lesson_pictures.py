"""The README's pictures of the lessons and a challenge, taken from the real app.

    python benchmarks/lesson_pictures.py [--out assets] [--present]

Starts ``panel serve app`` and, for each lesson, opens one of its steps from its link,
presses Play where the step trains (the Theory and Sweep steps show their tab), waits
until the run has made ``--steps`` steps and saves ``lesson-NAME.png``; then opens the
``spiral`` challenge with a solution, plays it until the page says it passed, and saves
``challenge.png``. ``--present`` takes the pictures at 1280 x 720 in the presenter view.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from gan2d.ui.browser import AppServer, launch_chromium

LOAD_MS = 180_000
#: the step each lesson's picture shows (from 1), and text its tab shows when it is
#: not the lab (the lab's pictures wait for the run's steps instead)
PICTURES = {
    "mode-collapse": (6, None),
    "vanishing-gradients": (1, None),
    "why-wasserstein": (1, "Divergences of a shifted copy"),
    "non-convergence": (2, "Dirac-GAN"),
    "loss-is-not-quality": (1, None),
}


def wait_steps(page, steps: int) -> None:
    page.wait_for_function(f"window.gan2d && window.gan2d.step >= {steps}", timeout=LOAD_MS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="assets")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--present", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = {"width": 1280, "height": 720} if args.present else {"width": 1600, "height": 1000}
    extra = "&present=1" if args.present else ""
    server = AppServer()
    try:
        server.wait_ready()
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_context(viewport=size).new_page()
            for name, (step, tab_text) in PICTURES.items():
                page.goto(f"{server.url}?lesson={name}&step={step}{extra}", timeout=LOAD_MS)
                if tab_text is None:
                    page.wait_for_function(
                        "window.gan2d && window.gan2d.frames > 0", timeout=LOAD_MS
                    )
                    page.get_by_role("button", name="Play").click()
                    wait_steps(page, args.steps)
                    page.get_by_role("button", name="Pause").click()
                else:
                    page.get_by_text(tab_text).first.wait_for(timeout=LOAD_MS)
                    page.wait_for_timeout(1500)  # its figures draw: nothing to wait on
                page.screenshot(path=str(out / f"lesson-{name}.png"))
                print(f"lesson-{name}.png", flush=True)
            page.goto(f"{server.url}?challenge=spiral&width=64&depth=3{extra}", timeout=LOAD_MS)
            page.wait_for_function("window.gan2d && window.gan2d.frames > 0", timeout=LOAD_MS)
            page.get_by_role("button", name="Play").click()
            page.get_by_text("Passed at step").wait_for(timeout=LOAD_MS)
            page.screenshot(path=str(out / "challenge.png"))
            print("challenge.png", flush=True)
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
