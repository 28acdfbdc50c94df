"""Fixtures: small real datasets made by the tests (no download, no embedded data)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

# One intra-op thread (before torch is imported; subprocesses inherit it): the tests' batches are
# tiny, and on a busy 2-core machine spinning OpenMP threads cost more than they give (the fast
# tier: ~70 s with one thread, ~250 s with two while another job ran). OMP_NUM_THREADS=2 to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parent.parent

# Train-time diagnostics at test size: 4 probes, one coarse relevance map.
CHEAP_DIAGNOSTICS = [
    "--trainer.callbacks.init_args.settings.num_probes", "4",
    "--trainer.callbacks.init_args.settings.relevance_probes", "1",
    "--trainer.callbacks.init_args.settings.relevance_window", "8",
    "--trainer.callbacks.init_args.settings.relevance_stride", "8",
]

# A tiny CRNN (~17k parameters instead of 3.2 M): same layers, same 32 frames, so every code
# path of training, checkpoints and diagnostics runs, in a fraction of the time.
TINY = {"lstm_units": 16, "lstm_layers": 1, "channels": (4, 8, 8, 8, 16)}
TINY_MODEL = [a for k, v in TINY.items() for a in (f"--model.{k}", str(list(v)) if isinstance(v, tuple) else str(v))]


def train_args(tmp_path: Path, data_root: Path, *extra: str, config: str = "baseline", tiny: bool = True) -> list[str]:
    """train.py arguments for a run on a folder dataset under ``tmp_path/runs``: no workers, no
    progress bars, cheap diagnostics and (unless ``tiny=False``) the tiny CRNN; ``extra`` last, so it wins."""
    return [
        "--config", str(ROOT / "configs" / "train" / f"{config}.yaml"),
        "--data.source", "folder", "--data.root", str(data_root), "--data.num_workers", "0", "--data.batch_size", "8",
        "--run.dir", str(tmp_path / "runs"), "--run.test_splits", "[test]",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        *CHEAP_DIAGNOSTICS, *(TINY_MODEL if tiny else []), *extra,
    ]


WORDS = ["are", "the", "to", "and", "Moon", "tell", "a", "of", "11", "it's", "pool", "go", ".", ",", "Hill", "word"]


def chromium_or_skip() -> str:
    """The Chromium binary, or skip the test (the browser checks need one; .ci/run installs it)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the browser check needs it")
    return chromium


def chromium_dom(chromium: str, url: str, profile: Path, window: str, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran, in headless Chromium (offline, quiet, fresh profile);
    with ``screenshot``, a PNG of the page too (for a person to look at)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=5000", f"--window-size={window}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    if screenshot is not None:
        subprocess.run([chromium, *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    return dom


def render_word(text: str, size: int = 28, seed: int = 0) -> np.ndarray:
    """A word in PIL's built-in font on light paper, tightly cropped: enough for real tests."""
    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    w, h = right - left + 8, bottom - top + 8
    im = Image.new("L", (max(w, 8), max(h, 8)), int(rng.integers(225, 250)))
    ImageDraw.Draw(im).text((4 - left, 4 - top), text, fill=int(rng.integers(10, 60)), font=font)
    return np.asarray(im)


def write_folder_dataset(root: Path, words: list[str], per_word: int = 2, splits: tuple[str, ...] = ("train", "val", "test")) -> Path:
    """root/<split>/labels.tsv + images, every split holding every word."""
    for split in splits:
        d = root / split / "images"
        d.mkdir(parents=True, exist_ok=True)
        lines = []
        for i, word in enumerate(words * per_word):
            name = f"images/{i:04d}.png"
            Image.fromarray(render_word(word, seed=i)).save(root / split / name)
            lines.append(f"{name}\t{word}")
        (root / split / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Tiny batches: one intra-op thread is much faster on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def folder_dataset(tmp_path: Path) -> Path:
    return write_folder_dataset(tmp_path / "words", WORDS)


@pytest.fixture
def iam_dataset(tmp_path: Path) -> Path:
    """A small IAM-format tree with the awkward cases of the real one."""
    root = tmp_path / "iam"
    lines = ["#--- words.txt: IAM format ---", "# format: a01-000u-00-00 ok 154 1 408 768 27 51 AT A"]
    n = 0
    for form_no in range(6):
        form = f"a0{form_no}-00{form_no}u"
        for line_no in range(2):
            for word_no, word in enumerate(WORDS[:4]):
                wid = f"{form}-{line_no:02d}-{word_no:02d}"
                path = root / "words" / form.split("-")[0] / form / f"{wid}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(render_word(word, seed=n)).save(path)
                lines.append(f"{wid} ok 154 408 768 27 51 AT {word}")
                n += 1
    f = "a09-009"
    d = root / "words" / "a09" / f
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(render_word("New York", seed=1)).save(d / f"{f}-00-00.png")
    lines.append(f"{f}-00-00 ok 154 408 768 27 51 NP New York")  # transcription with a space
    Image.fromarray(render_word("bad", seed=2)).save(d / f"{f}-00-01.png")
    lines.append(f"{f}-00-01 err 154 408 768 27 51 JJ bad")  # segmentation error
    lines.append(f"{f}-00-02 ok 154 408 768 27 51 NN missing")  # no image file
    (d / f"{f}-00-03.png").write_bytes(b"")
    lines.append(f"{f}-00-03 ok 154 408 768 27 51 NN empty")  # zero-byte image
    Image.fromarray(render_word("caf", seed=3)).save(d / f"{f}-00-04.png")
    lines.append(f"{f}-00-04 ok 154 408 768 27 51 NN café")  # character outside IAM's charset
    lines.append(f"{f}-00-05 ok 154")  # too few fields
    (root / "ascii").mkdir(parents=True)
    (root / "ascii" / "words.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
