"""The embedded synthetic dataset: determinism, labels, fonts, splits, on-disk cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from htr.data.preprocess import load_image, to_canvas
from htr.data.synthetic import (
    DEFAULT_HELDOUT,
    EXPECTED_FAMILIES,
    SPLITS,
    SyntheticConfig,
    available_fonts,
    materialize,
    render_sample,
    render_sample_with_font,
    sample_text,
    split_fonts,
)
from htr.text import IAM_CHARSET, ctc_min_frames

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
        image, text, font = render_sample_with_font(TINY, split, i)
        assert set(text) <= set(font.chars)
        assert image.shape[0] >= 5 and image.shape[1] >= 5
        paper = np.median(image)
        assert paper > 180 and image.min() < paper - 80, (split, i, text, font.name)
        assert to_canvas(image).shape == (32, 128)


def test_expected_fonts_found():
    fonts = available_fonts()
    families = {f.family for f in fonts}
    missing = set(EXPECTED_FAMILIES) - families
    assert not missing, f"fonts not found (pip install fontpkg-<name>): {sorted(missing)}"
    assert len([f for f in fonts if f.family == "kalam"]) == 3
    assert any(f.variable for f in fonts)
    for f in fonts:
        assert all(c in f.chars for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_heldout_fonts_only_in_test_unseen():
    unseen = split_fonts(TINY, "test_unseen")
    assert {f.name for f in unseen} == set(DEFAULT_HELDOUT)
    for split in ("train", "val", "test"):
        names = {f.name for f in split_fonts(TINY, split)}
        assert not names & set(DEFAULT_HELDOUT)
        for i in range(30):
            assert render_sample_with_font(TINY, split, i)[2].name not in DEFAULT_HELDOUT
    for i in range(10):
        assert render_sample_with_font(TINY, "test_unseen", i)[2].name in DEFAULT_HELDOUT
    with pytest.raises(ValueError):
        split_fonts(SyntheticConfig(heldout_fonts=("NoSuchFont",)), "train")


def test_extra_fonts_glob(tmp_path):
    src = next(f for f in available_fonts() if f.family == "delius").path
    dst = tmp_path / "MyHand.ttf"
    dst.write_bytes(src.read_bytes())
    names = {f.name for f in available_fonts(str(tmp_path / "*.ttf"))}
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
