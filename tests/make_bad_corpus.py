"""Regenerate tests/data/bad_inputs/: an IAM-format tree full of the inputs that break loaders.

    python tests/make_bad_corpus.py

Every entry and what the project must do with it is listed in EXPECTED (the tests read it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import render_word  # noqa: E402

ROOT = Path(__file__).resolve().parent / "data" / "bad_inputs"
FORM = "b01-000"

# word id -> (transcription as written in words.txt, what happens: "loaded" or the skip reason)
EXPECTED: dict[str, tuple[str, str]] = {
    "b01-000-00-00": ("fine", "loaded"),
    "b01-000-00-01": ("rgba", "loaded"),
    "b01-000-00-02": ("sixteen", "loaded"),
    "b01-000-00-03": ("dot", "loaded"),  # a 1x1 image
    "b01-000-00-04": ("huge", "loaded"),  # 10000 x 10
    "b01-000-00-05": ("trunc", "unreadable images"),
    "b01-000-00-06": ("zero", "empty (0-byte) images"),
    "b01-000-00-07": ("nofile", "missing images"),
    "b01-000-00-08": ("o" * 17, "labels too long for 32 CTC frames"),
    "b01-000-00-09": ("na\u00efve", "labels with characters outside the charset"),
    "b01-000-00-10": ("fine", "loaded"),  # its id appears again on a later line: that one is the duplicate
}


def main() -> None:
    words = ROOT / "words" / "b01" / FORM
    words.mkdir(parents=True, exist_ok=True)
    png = lambda wid: words / f"{wid}.png"  # noqa: E731
    Image.fromarray(render_word("fine")).save(png("b01-000-00-00"))
    gray = render_word("rgba")
    Image.fromarray(np.dstack([gray, gray, gray, np.full_like(gray, 255)]), "RGBA").save(png("b01-000-00-01"))
    Image.fromarray(render_word("sixteen").astype(np.uint16) * 257).save(png("b01-000-00-02"))
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(png("b01-000-00-03"))
    huge = np.full((10, 10000), 230, np.uint8)
    huge[3:7, ::50] = 20
    Image.fromarray(huge).save(png("b01-000-00-04"))
    full = (png("b01-000-00-00")).read_bytes()
    png("b01-000-00-05").write_bytes(full[: len(full) // 2])
    png("b01-000-00-06").write_bytes(b"")
    for wid in ("b01-000-00-08", "b01-000-00-09", "b01-000-00-10"):
        Image.fromarray(render_word("x")).save(png(wid))
    lines = [b"#--- bad-input corpus for htr-shortcuts' tests ---"]
    for wid, (text, _) in EXPECTED.items():
        lines.append(f"{wid} ok 154 408 768 27 51 NN {text}".encode())
    lines.append(b"b01-000-00-10 ok 154 408 768 27 51 NN again")  # duplicate id
    lines.append(b"b01-000-00-11 ok 154 408 768 27 51 NN caf\xe9")  # Latin-1 byte: not UTF-8
    lines.append(b"b01-000-00-12 ok 154")  # too few fields
    (ROOT / "words.txt").write_bytes(b"\n".join(lines) + b"\n")
    # Folder-format twin: a tab inside a label, an empty label, a duplicate path.
    rows = ["words/b01/b01-000/b01-000-00-00.png\tfine", "words/b01/b01-000/b01-000-00-01.png\ttab\tinside",
            "words/b01/b01-000/b01-000-00-02.png\t", "words/b01/b01-000/b01-000-00-00.png\tdup"]
    (ROOT / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (ROOT / "expected.json").write_text(json.dumps(EXPECTED, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
