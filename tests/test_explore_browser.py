"""The explorer in a real browser: headless Debian Chromium driven by Playwright.

Paints a black block on the background of a word and checks that the score the page shows for
each checkpoint is what ``python -m htr.diagnostics edit`` prints for the same edit (run as the
very command the page's export prints). Skips, saying why, where Chromium or Playwright is
missing (``.ci/run`` installs Chromium with apt-get when it runs as root).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import render_word
from htr.explore.server import serve_in_thread
from htr.explore.session import Explorer
from test_explore import save_checkpoint

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Offline and quiet: no first-run, sync, component or background network traffic.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"]
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def page_and_files(tmp_path_factory: pytest.TempPathFactory):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -r requirements.txt)")
    if CHROMIUM is None:
        pytest.skip("no chromium executable: install Debian's chromium (apt-get install chromium) to run the browser test")
    root = tmp_path_factory.mktemp("browser")
    image = root / "are.png"
    Image.fromarray(render_word("are")).save(image)
    ckpts = [save_checkpoint(root / "a.ckpt", 0), save_checkpoint(root / "b.ckpt", 1)]
    explorer = Explorer([str(c) for c in ckpts], probes=None, export_dir=root / "exports")
    first = explorer.upload(image.read_bytes(), "are.png").id
    server = serve_in_thread(explorer)
    with playwright_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except playwright_api.Error as err:
            pytest.skip(f"chromium at {CHROMIUM} does not start under Playwright: {str(err).splitlines()[0]}")
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server.url}?source={first}")
        page.wait_for_selector("body[data-ready='1'][data-busy='0']", timeout=60_000)
        yield page, {"ckpts": ckpts, "image": image, "errors": errors}
        browser.close()
    server.shutdown()
    server.server_close()
    explorer.close()


def drag_on_canvas(page, x0: int, y0: int, x1: int, y1: int) -> None:
    """Press at canvas pixel (x0, y0), release at (x1, y1) (centres of the 5x-scaled pixels)."""
    box = page.locator("#editor").bounding_box()
    scale = (box["width"] - 2) / 128  # 1 px border
    at = lambda x, y: (box["x"] + 1 + (x + 0.5) * scale, box["y"] + 1 + (y + 0.5) * scale)  # noqa: E731
    page.mouse.move(*at(x0, y0))
    page.mouse.down()
    page.mouse.move(*at((x0 + x1) // 2, (y0 + y1) // 2), steps=4)
    page.mouse.move(*at(x1, y1), steps=4)
    page.mouse.up()


def cli_edit_score(command: str) -> str:
    """Run an exported ``python -m htr.diagnostics edit`` command; the edited row's score."""
    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "htr.diagnostics", "edit"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    rows = run.stdout.splitlines()
    return rows[2].split()[1]  # header, original, the edit


def test_painted_block_scores_like_the_edit_cli(page_and_files) -> None:
    page, files = page_and_files
    before = [page.text_content(f"#score-{i}") for i in range(2)]
    page.check("input[value=block]")
    drag_on_canvas(page, 100, 4, 123, 27)
    page.wait_for_selector("body[data-spec='100,4,124,28=0'][data-busy='0']", timeout=60_000)
    shown = [page.text_content(f"#score-{i}") for i in range(2)]
    assert shown != before  # the block changed what the models see
    page.click("#export")
    page.wait_for_selector("#export-out:not([hidden])", timeout=60_000)
    commands = [ln for ln in page.text_content("#export-out").splitlines() if ln.startswith("python -m htr.diagnostics edit")]
    assert len(commands) == 2 and all("--set 100,4,124,28=0" in c for c in commands)
    assert [cli_edit_score(c) for c in commands] == shown
    assert files["errors"] == []


def test_undo_brush_and_shift_update_the_scores(page_and_files) -> None:
    page, _ = page_and_files
    page.click("#clear")
    page.wait_for_selector("body[data-spec=''][data-busy='0']")
    clean = page.text_content("#score-0")
    page.check("input[value=brush]")
    drag_on_canvas(page, 90, 10, 110, 10)
    page.wait_for_selector("body[data-busy='0']")
    spec = page.evaluate("document.body.dataset.spec")
    assert spec.startswith("89,9,92,12=0;90,9,93,12=0") and spec.count(";") >= 19  # 3 px squares along the stroke
    page.click("#undo")
    page.wait_for_selector("body[data-spec=''][data-busy='0']")
    assert page.text_content("#score-0") == clean
    page.fill("#shift", "8")
    page.dispatch_event("#shift", "input")
    page.wait_for_selector("body[data-busy='0']")
    assert page.text_content("#shift-value") == "8" and len(page.locator("#frames-0 span").all()) == 32


def test_relevance_map_shows_progress_and_result(page_and_files) -> None:
    page, _ = page_and_files
    page.click("#rel4")
    page.wait_for_selector("body[data-relevance='4']", timeout=180_000)
    assert "4x4 maps in" in page.text_content("#rel-info")
    assert "weight of evidence" in page.text_content("#relinfo-0")


def test_bad_input_gets_a_message_in_the_page(page_and_files) -> None:
    page, files = page_and_files
    page.fill("#text", "arz")
    page.wait_for_function("document.getElementById('error-0').textContent.includes('outside the model')", timeout=60_000)
    page.set_input_files("#upload", files={"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image at all"})
    page.wait_for_function("document.getElementById('message').textContent.includes('notes.txt: not an image')", timeout=60_000)
    page.fill("#text", "are")  # the server kept running: the page scores again
    page.wait_for_function("document.getElementById('error-0').textContent === ''", timeout=60_000)
    assert page.text_content("#score-0") != "-"
    assert files["errors"] == []
