"""The README's pictures of own data, replay and export, taken from the real app, and
the size of a 30-second run's GIF.

    python benchmarks/files_pictures.py [--out assets] [--seconds 30]

Starts ``panel serve app``, draws a face on the map with the mouse (strokes and clicks),
trains on it, and saves ``own-data.png``; pauses and drags the timeline back for
``replay.png``; returns to live and saves the downloaded PNG export as ``export.png``.
Then plays a default run for ``--seconds`` and prints one JSON line with the size and
frame count of its downloaded GIF.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from gan2d.ui.browser import AppServer, launch_chromium

LOAD_MS = 180_000


def open_lab(page, url: str) -> None:
    page.goto(url, timeout=LOAD_MS)
    page.wait_for_function("window.gan2d && window.gan2d.frames > 0", timeout=LOAD_MS)


def map_box(page) -> dict:
    boxes = [c.bounding_box() for c in page.locator("canvas").all()]
    return max((b for b in boxes if b), key=lambda b: b["width"] * b["height"])


def draw_face(page) -> None:
    box = map_box(page)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r = box["width"] * 0.3

    def stroke(points) -> None:
        page.mouse.move(*points[0])
        page.mouse.down()
        for p in points[1:]:
            page.mouse.move(*p, steps=2)
        page.mouse.up()

    circle = [(cx + r * math.cos(t), cy + r * math.sin(t)) for t in
              [2 * math.pi * i / 60 for i in range(61)]]  # fmt: skip
    stroke(circle)
    smile = [(cx + 0.55 * r * math.cos(t), cy + 0.55 * r * math.sin(t)) for t in
             [math.pi * (0.15 + 0.7 * i / 20) for i in range(21)]]  # fmt: skip
    stroke(smile)
    for ex in (-0.35, 0.35):
        for dx, dy in ((0, 0), (4, 0), (0, 4), (-4, 0), (0, -4)):
            page.mouse.click(cx + ex * r + dx, cy - 0.3 * r + dy)


def download(page, label: str) -> bytes:
    with page.expect_download(timeout=LOAD_MS) as info:
        page.get_by_role("button", name=label).click()
    return Path(info.value.path()).read_bytes()


def pictures(browser, url: str, out: Path) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1050})
    open_lab(page, url + "?preset=wgan-gp&speed=20")
    page.get_by_role("button", name="Your own data: draw, open a file…").click()
    page.get_by_role("button", name="Draw points").click()
    draw_face(page)
    page.get_by_role("button", name="Train on these").click()
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.gan2d.step >= 3000", timeout=LOAD_MS)
    page.screenshot(path=str(out / "own-data.png"))
    page.get_by_role("button", name="Pause").click()
    page.get_by_text("moments kept: drag to go back").wait_for(timeout=LOAD_MS)
    handle = page.locator(".noUi-handle").last
    handle.focus()
    handle.press("Home")
    for _ in range(12):
        handle.press("ArrowRight")
    page.get_by_text("replaying step").first.wait_for(timeout=LOAD_MS)
    page.screenshot(path=str(out / "replay.png"))
    page.get_by_role("button", name="Live", exact=True).click()
    page.close()

    page = browser.new_page(viewport={"width": 1500, "height": 1050})
    open_lab(page, url + "?preset=wgan-gp&speed=10")
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.gan2d.step >= 1500", timeout=LOAD_MS)
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("button", name="Save: picture, animation, config, weights…").click()
    (out / "export.png").write_bytes(download(page, "Picture (PNG)"))
    page.close()


def gif_size(browser, url: str, seconds: float) -> dict:
    page = browser.new_page(viewport={"width": 1500, "height": 1050})
    open_lab(page, url)
    page.get_by_role("button", name="Play").click()
    time.sleep(seconds)  # a run of this length is what is measured, not a condition
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("button", name="Save: picture, animation, config, weights…").click()
    step = page.evaluate("window.gan2d.step")
    raw = download(page, "Animation (GIF)")
    gif = Image.open(io.BytesIO(raw))
    page.close()
    return {"seconds": seconds, "steps": step, "gif_bytes": len(raw), "gif_frames": gif.n_frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("assets"))
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with AppServer() as server, sync_playwright() as pw:
        server.wait_ready()
        browser = launch_chromium(pw)
        try:
            pictures(browser, server.url, args.out)
            print(json.dumps(gif_size(browser, server.url, args.seconds)), flush=True)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
