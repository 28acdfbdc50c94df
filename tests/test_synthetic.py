"""The embedded synthetic dataset: determinism, labels, fonts, splits, on-disk cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from htr.data.preprocess import load_image, to_canvas
from htr.data.synthetic import (
    SPLITS,
    FontError,
    SyntheticConfig,
    available_fonts,
    materialize,
    render_sample,
    render_sample_with_writer,
    sample_text,
    split_writer,
)
from htr.data.synthetic.fonts import MANIFEST
from htr.text import IAM_CHARSET, ctc_min_frames

STYLES = ("print", "cursive", "marker")  # the styles fonts.json gives the vendored fonts
TINY = SyntheticConfig(n_train=12, n_val=4, n_test=4, n_test_unseen=6)


def test_deterministic_per_seed_split_index():
    a, ta = render_sample(TINY, "train", 3)
    b, tb = render_sample(TINY, "train", 3)
    assert ta == tb and a.dtype == np.uint8 and a.ndim == 2
    assert a.tobytes() == b.tobytes()
    other = SyntheticConfig(seed=1)
    c, tc = render_sample(other, "train", 3)
    assert tc != ta or c.shape != a.shape or c.tobytes() != a.tobytes()
    # a sample does not depend on the split sizes
    bigger = SyntheticConfig(n_train=50000)
    d, td = render_sample(bigger, "train", 3)
    assert td == ta and d.tobytes() == a.tobytes()
    # other splits differ
    e, te = render_sample(TINY, "val", 3)
    assert te != ta or e.tobytes() != a.tobytes()


def test_labels_in_charset_and_fit_ctc():
    rng = np.random.default_rng(0)
    texts = [sample_text(TINY, rng) for _ in range(3000)]
    for t in texts:
        assert t and t == t.strip() and "\t" not in t and "\n" not in t and " " not in t
        assert set(t) <= set(IAM_CHARSET), t
        assert ctc_min_frames(t) <= 32 and len(t) <= 16, t
    punct = sum(1 for t in texts if not any(c.isalnum() for c in t))
    assert 0.05 < punct / len(texts) < 0.16  # ~10% punctuation tokens
    assert texts.count(".") > texts.count("!") and texts.count(",") > texts.count("?")
    assert any(t[0].isupper() for t in texts) and any(t[0].isdigit() for t in texts)
    # a restricted character set is respected (text is resampled)
    letters_only = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert all(set(sample_text(TINY, rng, letters_only)) <= set(letters_only) for _ in range(300))


@pytest.mark.parametrize("split", SPLITS)
def test_images_have_ink_and_labels_are_renderable(split):
    for i in range(8):
        image, text, writer = render_sample_with_writer(TINY, split, i)
        font = writer.font
        assert set(text) <= set(font.chars)
        assert image.shape[0] >= 5 and image.shape[1] >= 5
        paper = np.median(image)
        assert image.min() < paper - 40, (split, i, text, font.name)  # ink on paper, whatever its gray
        canvas = to_canvas(image)
        assert canvas.shape == (32, 128)
        # after contrast normalisation: white paper, dark ink
        assert np.median(canvas) > 235 and canvas.min() < 128, (split, i, text, font.name)


def test_vendored_fonts_are_many_hands_with_licences():
    fonts = available_fonts()
    manifest = json.loads(MANIFEST.read_text())
    families = {f.family for f in fonts}
    assert len(families) >= 50, f"only {len(families)} font families usable"
    # every manifest entry is either usable or listed as dropped with a reason
    assert len(manifest["fonts"]) >= len(fonts) and all(d.get("reason") for d in manifest.get("dropped", []))
    for f in fonts:
        assert f.path.is_file() and f.style in STYLES
        assert f.license in ("OFL-1.1", "Apache-2.0"), (f.name, f.license)
        assert (f.path.parent / "LICENSE").is_file() or any(f.path.parent.glob("*.txt")), f"no licence text beside {f.path}"
        assert all(c in f.chars for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    heldout = [f for f in fonts if f.heldout]
    assert len({f.family for f in heldout}) >= 10
    assert {f.style for f in heldout} == set(STYLES)  # print, cursive and marker hands held out
    assert any(f.joined for f in fonts) and any(not f.joined for f in fonts)


def test_heldout_fonts_only_in_test_unseen():
    unseen = {f.name for f in TINY.fonts("test_unseen")}
    assert unseen == {f.name for f in available_fonts() if f.heldout}
    for split in ("train", "val", "test"):
        assert not {f.name for f in TINY.fonts(split)} & unseen
        for i in range(30):
            assert render_sample_with_writer(TINY, split, i)[2].font.name not in unseen
    for i in range(10):
        assert render_sample_with_writer(TINY, "test_unseen", i)[2].font.name in unseen
    chosen = SyntheticConfig(heldout_fonts=("caveat",))
    assert {f.family for f in chosen.fonts("test_unseen")} == {"caveat"}
    with pytest.raises(FontError, match="NoSuchFont"):
        SyntheticConfig(heldout_fonts=("NoSuchFont",)).fonts("train")


def test_writers_are_consistent_and_splits_have_their_own():
    a, b = split_writer(TINY, "train", 5), split_writer(TINY, "train", 5)
    assert a == b
    train = {split_writer(TINY, "train", i) for i in range(40)}
    test = {split_writer(TINY, "test", i) for i in range(40)}
    assert len(train) == 40 and not train & test  # val/test are new writers of the same fonts
    # habits differ between writers (not one style per font)
    slants = [w.slant for w in train]
    assert np.std(slants) > 0.05 and len({w.font.family for w in train}) > 10


def test_glyph_by_glyph_jitter_changes_the_word_but_not_the_label():
    from dataclasses import replace

    from htr.data.synthetic import render_word

    writer = next(split_writer(TINY, "train", i) for i in range(200) if not split_writer(TINY, "train", i).font.joined)
    calm = replace(writer, glyph_scale=0.0, glyph_rotate=0.0, glyph_rise=0.0, spacing=0.0)
    wild = replace(writer, glyph_scale=0.15, glyph_rotate=0.15, glyph_rise=0.08, spacing=0.15)
    x = render_word(calm, "minimum", np.random.default_rng(3))
    y = render_word(wild, "minimum", np.random.default_rng(3))
    assert x.shape != y.shape or not np.array_equal(x, y)
    assert np.array_equal(x, render_word(calm, "minimum", np.random.default_rng(3)))
    with pytest.raises(ValueError):
        render_word(writer, "", np.random.default_rng(0))


def test_extra_fonts_glob(tmp_path):
    src = next(f for f in available_fonts() if not f.heldout).path
    dst = tmp_path / f"MyHand{src.suffix}"
    dst.write_bytes(src.read_bytes())
    names = {f.name for f in available_fonts(str(tmp_path / "*"))}
    assert "MyHand" in names


def test_materialize_writes_and_caches(tmp_path):
    root = materialize(tmp_path / "syn", TINY, progress=False, workers=1)
    assert (root / "manifest.json").is_file()
    for split in SPLITS:
        lines = (root / split / "labels.tsv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == TINY.size(split)
        for i, line in enumerate(lines):
            rel, text = line.split("\t")
            assert rel == f"images/{i:06d}.png"
            image = load_image(root / split / rel)
            expected_image, expected_text = render_sample(TINY, split, i)
            assert text == expected_text
            assert np.array_equal(image, expected_image)
    assert not [p for p in root.iterdir() if ".tmp-" in p.name]
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    materialize(root, TINY, progress=False, workers=1)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamp
    # a changed size regenerates only that split
    bigger = SyntheticConfig(n_train=12, n_val=4, n_test=4, n_test_unseen=8)
    materialize(root, bigger, progress=False, workers=1)
    assert len((root / "test_unseen" / "labels.tsv").read_text().splitlines()) == 8
    assert (root / "train" / "labels.tsv").stat().st_mtime_ns == stamp[root / "train" / "labels.tsv"]
    assert os.path.getsize(root / "test_unseen" / "images" / "000007.png") > 0


def test_materialize_refuses_foreign_folder(tmp_path):
    (tmp_path / "syn" / "train").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        materialize(tmp_path / "syn", TINY, progress=False, workers=1)


def test_materialize_parallel_matches_serial(tmp_path):
    cfg = SyntheticConfig(n_train=200, n_val=0, n_test=0, n_test_unseen=0)
    a = materialize(tmp_path / "a", cfg, progress=False, workers=2, splits=("train",))
    lines = (Path(a) / "train" / "labels.tsv").read_text().splitlines()
    assert len(lines) == 200
    for i in (0, 57, 199):
        rel, text = lines[i].split("\t")
        image, expected = render_sample(cfg, "train", i)
        assert text == expected and np.array_equal(load_image(a / "train" / rel), image)


def test_evaluation_generates_only_the_splits_it_reads(tmp_path):
    from htr.data.datamodule import WordDataModule

    def data() -> WordDataModule:
        return WordDataModule(root=str(tmp_path / "syn"), synthetic=TINY.to_dict(), num_workers=0)

    data().prepare_data(splits=["test", "val", "no-such-split"])
    assert sorted(p.name for p in (tmp_path / "syn").iterdir() if p.is_dir()) == ["test", "val"]
    partial = data()
    assert sorted(partial.splits()) == ["test", "val"] and len(partial.dataset("test")) == TINY.n_test
    stamp = (tmp_path / "syn" / "test" / "labels.tsv").stat().st_mtime_ns
    data().prepare_data()  # training: the rest is generated, what exists is kept
    assert sorted(data().splits()) == sorted(SPLITS)
    assert (tmp_path / "syn" / "test" / "labels.tsv").stat().st_mtime_ns == stamp


GENERATE_AFTER_TRAINING = """
import sys
import cv2, numpy as np, torch
from htr.data.synthetic import SyntheticConfig, materialize

if __name__ == "__main__":
    # Thread pools live in this process, as after a training step and an augmented batch.
    torch.set_num_threads(2); cv2.setNumThreads(2)
    x = torch.randn(600, 600); [x @ x for _ in range(3)]
    im = np.random.randint(0, 255, (1500, 1500), np.uint8); [cv2.GaussianBlur(im, (31, 31), 5) for _ in range(3)]
    materialize(sys.argv[1], SyntheticConfig(n_train=200, n_val=0, n_test=0, n_test_unseen=0, n_writers=20), progress=False, workers=2, splits=("train",))
"""


@pytest.mark.slow
def test_generation_in_a_process_that_already_ran_threads(tmp_path: Path):
    """A forked worker inherits the parent's torch/OpenCV thread-pool locks and hangs; the
    generator's workers start fresh (the ablation runner generates after training)."""
    import subprocess
    import sys

    script = tmp_path / "generate.py"
    script.write_text(GENERATE_AFTER_TRAINING)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "data")], env=env, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len((tmp_path / "data" / "train" / "labels.tsv").read_text().splitlines()) == 200
