"""Re-make docs/explorer.png: the explorer on the shipped checkpoints, a block painted on "are".

    PYTHONPATH=. python docs/explorer_screenshot.py    # needs Debian chromium and playwright

Starts the explorer in this process on a free port, opens it in headless Chromium (1400 px
wide), paints a black block on the paper right of the word, asks for the 4x4 relevance maps,
exports, and saves the page.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from htr.explore.server import serve_in_thread
from htr.explore.session import Explorer

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"]


def drag(page, x0: int, y0: int, x1: int, y1: int) -> None:
    """Press at canvas pixel (x0, y0), release at (x1, y1)."""
    box = page.locator("#editor").bounding_box()
    scale = (box["width"] - 2) / 128
    def at(x: int, y: int) -> tuple[float, float]:
        return box["x"] + 1 + (x + 0.5) * scale, box["y"] + 1 + (y + 0.5) * scale
    page.mouse.move(*at(x0, y0))
    page.mouse.down()
    page.mouse.move(*at(x1, y1), steps=6)
    page.mouse.up()


def main(out: str = "docs/explorer.png") -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: no chromium executable (apt-get install chromium)", file=sys.stderr)
        return 2
    image = Path("docs/results/examples/are.png")
    explorer = Explorer(["checkpoints/baseline.ckpt", "checkpoints/augmented.ckpt"], probes=None, export_dir="reports/explore")
    first = explorer.upload(image.read_bytes(), image.name).id
    server = serve_in_thread(explorer)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{server.url}?source={first}")
            page.wait_for_selector("body[data-ready='1'][data-busy='0']", timeout=120_000)
            page.fill("#text", "are")
            page.dispatch_event("#text", "input")
            page.wait_for_selector("body[data-busy='0']")
            page.check("input[value=block]")
            drag(page, 100, 4, 123, 27)
            page.wait_for_selector("body[data-spec='100,4,124,28=0'][data-busy='0']", timeout=120_000)
            page.click("#rel4")
            page.wait_for_selector("body[data-relevance='4']", timeout=300_000)
            page.click("#export")
            page.wait_for_selector("#export-out:not([hidden])", timeout=60_000)
            page.screenshot(path=out, full_page=True)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
        explorer.close()
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
