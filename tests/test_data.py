"""Preprocessing, readers, augmentation and the DataModule on small real data made here."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import render_word
from htr.data.augment import AUGMENTATIONS, WordTransform
from htr.data.datamodule import EpochSampler, WordDataModule
from htr.data.preprocess import BACKGROUND, HEIGHT, WIDTH, ImageError, fit_word, load_image, normalize, place, preprocess, to_canvas
from htr.data.readers import DatasetError, WordSample, filter_labels, form_id, read_iam_words, split_by_form
from htr.text import IAM_CHARSET, Charset


def test_preprocess_is_left_aligned_and_keeps_aspect_ratio() -> None:
    word = np.full((20, 40), 200, np.uint8)
    word[:, :2] = 0  # a dark left edge marks where the word starts
    canvas = to_canvas(word)
    assert canvas.shape == (HEIGHT, WIDTH) and canvas.dtype == np.uint8
    cols = np.where((canvas < 100).any(axis=0))[0]
    assert cols.min() == 0  # IAM style: every word starts at x = 0
    # 20x40 scales by 1.6 to 32x64; its gray paper (200) becomes white like the canvas fill
    # beyond column 64: no paper rectangle edge for the model to use.
    assert (canvas[:, 64:] == BACKGROUND).all() and (canvas[:, 4:64] == BACKGROUND).all()
    t = preprocess(word)
    assert t.shape == (1, HEIGHT, WIDTH) and t.dtype == torch.float32
    assert torch.allclose(t, normalize(canvas)) and float(t.max()) == 1.0


def test_contrast_normalisation_reads_gray_dim_and_uneven_paper_like_white() -> None:
    word = render_word("minimum", size=40)
    white = (255 - (255 - word.astype(np.float32)) * 255 / (255 - word.min())).clip(0, 255)  # ink 0, paper ~250
    h, w = word.shape
    ramp = np.linspace(0.75, 1.0, w, dtype=np.float32)[None, :]
    copies = {
        "gray paper": white * 0.7,  # paper ~175, ink 0
        "low contrast": 120 + white * 0.25,  # paper ~182, ink 120: a faint pencil on gray
        "uneven light": white * ramp,  # paper 187..250 from left to right
    }
    reference = to_canvas(white.astype(np.uint8)).astype(np.float32)
    unnormalised = place(fit_word(copies["low contrast"].astype(np.uint8))).astype(np.float32)
    assert np.abs(unnormalised - reference).mean() > 40  # the copies really differ before
    for name, img in copies.items():
        canvas = to_canvas(img.astype(np.uint8)).astype(np.float32)
        assert np.abs(canvas - reference).mean() < 8, name
        assert np.median(canvas) >= 250 and canvas.min() < 40, name
    # a nearly empty crop (paper with faint noise) is not stretched into black-and-white noise
    rng = np.random.default_rng(0)
    blank = (230 + rng.normal(0, 2, (40, 60))).clip(0, 255).astype(np.uint8)
    assert to_canvas(blank).min() > 100


def test_fit_word_wide_and_tall_images() -> None:
    assert fit_word(np.zeros((10, 1000), np.uint8)).shape == (1, 128)
    assert fit_word(np.zeros((1000, 10), np.uint8)).shape == (32, 1)
    assert place(np.zeros((5, 5), np.uint8), x=3).shape == (HEIGHT, WIDTH)
    with pytest.raises(ValueError, match="outside"):
        place(np.zeros((5, 5), np.uint8), x=126)


def test_load_image_modes(tmp_path: Path) -> None:
    gray = render_word("are")
    rgba = np.dstack([np.stack([gray] * 3, -1), np.full(gray.shape, 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(load_image(tmp_path / "rgba.png"), gray)
    assert np.abs(load_image(tmp_path / "g16.png").astype(int) - gray).max() <= 1
    (tmp_path / "zero.png").write_bytes(b"")
    png = (tmp_path / "rgba.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(png[: len(png) // 2])
    for name, msg in [("zero.png", "empty file"), ("trunc.png", "unreadable"), ("nope.png", "not found")]:
        with pytest.raises(ImageError, match=msg) as err:
            load_image(tmp_path / name)
        assert name in str(err.value)


def test_iam_reader_handles_the_awkward_lines(iam_dataset: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        samples, report = read_iam_words(iam_dataset)
    ids = {s.id for s in samples}
    assert len(samples) == 6 * 2 * 4 + 2  # regular words + "New York" + "café" (filtered later)
    assert "a09-009-00-00" in ids and [s.text for s in samples if s.id == "a09-009-00-00"] == ["New York"]
    assert report.counts() == {
        "segmentation 'err' lines (data.include_err=false)": 1,
        "missing images": 1,
        "empty (0-byte) images": 1,
        "lines with fewer than 9 fields": 1,
    }
    # One summary warning that counts everything and names examples.
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 4 entries" in warnings[0].message and "a09-009-00-02" in warnings[0].message
    with_err, _ = read_iam_words(iam_dataset, include_err=True)
    assert len(with_err) == len(samples) + 1


def test_label_filter_counts_unknown_and_too_long() -> None:
    cs = Charset(IAM_CHARSET)
    p = Path("x.png")
    samples = [WordSample("ok", p, "fine"), WordSample("u", p, "café"), WordSample("long", p, "o" * 17), WordSample("e", p, ""), WordSample("t", p, "a\tb")]
    kept, report = filter_labels(samples, cs, "test")
    assert [s.id for s in kept] == ["ok"]
    assert report.total == 4
    mapped, report = filter_labels(samples, cs, "test", unknown_chars="map")
    assert [s.text for s in mapped] == ["fine", "cafe"]


def test_split_by_form_keeps_forms_apart(iam_dataset: Path) -> None:
    samples, _ = read_iam_words(iam_dataset)
    splits = split_by_form(samples, (0.5, 0.25, 0.25), seed=3)
    forms = [{form_id(s.id) for s in v} for v in splits.values()]
    assert all(not (a & b) for i, a in enumerate(forms) for b in forms[i + 1 :])
    assert sum(len(v) for v in splits.values()) == len(samples)
    assert split_by_form(samples, (0.5, 0.25, 0.25), seed=3) == splits


def test_split_lists(iam_dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("a00-000u\na01-001u-00\n")
    (tmp_path / "val.txt").write_text("a02-002u\n")
    dm = WordDataModule(source="iam", root=str(iam_dataset), split_files={"train": str(tmp_path / "train.txt"), "val": str(tmp_path / "val.txt")}, num_workers=0)
    splits = dm.splits()
    assert len(splits["train"]) == 8 + 4 and len(splits["val"]) == 8


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        WordDataModule(source="iam", root=str(tmp_path / "nope")).splits()
    with pytest.raises(DatasetError, match="not found"):
        WordDataModule(source="folder", root=str(tmp_path / "nope")).splits()


@pytest.mark.parametrize("augmentation", AUGMENTATIONS)
def test_augmentations_give_canvases_and_are_seeded(augmentation: str) -> None:
    word = render_word("pool")
    t = WordTransform(augmentation, seed=1)
    outs = [t(word, index=i, epoch=0) for i in range(20)]
    assert all(o.shape == (HEIGHT, WIDTH) and o.dtype == np.uint8 for o in outs)
    np.testing.assert_array_equal(t(word, index=5, epoch=2), WordTransform(augmentation, seed=1)(word, index=5, epoch=2))
    # Where the ink starts: the word's crop has a 4 px margin, which scales to ~5 px.
    ink_start = [int(np.where(o.min(axis=0) < 100)[0].min()) for o in outs]
    if "translate" in augmentation:
        assert max(ink_start) >= 16  # words move away from the left edge
    else:
        assert max(ink_start) <= 6 and len(set(ink_start)) == 1


def test_datamodule_batches_and_counts(iam_dataset: Path) -> None:
    dm = WordDataModule(source="iam", root=str(iam_dataset), batch_size=4, num_workers=0, split_fractions=(0.5, 0.25, 0.25))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 1, HEIGHT, WIDTH)
    assert len(batch["text"]) == 4
    skipped = sum(r.total for r in dm.skip_reports)
    assert skipped == 5  # err, missing, empty, short line, unknown character


def test_unreadable_image_is_replaced_not_fatal(folder_dataset: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Truncate one image after set-up (as if the disk went bad mid-run).
    dm = WordDataModule(source="folder", root=str(folder_dataset), batch_size=8, num_workers=0)
    dm.setup("fit")
    victim = dm.splits()["train"][0].path
    victim.write_bytes(victim.read_bytes()[:40])
    with caplog.at_level(logging.WARNING):
        images = [b["image"] for b in dm.train_dataloader()]
    assert sum(len(x) for x in images) == len(dm.splits()["train"])
    assert any(victim.name in r.message for r in caplog.records)


def test_epoch_sampler_is_seeded_and_varies_by_epoch() -> None:
    s = EpochSampler(50, seed=0)
    a = list(s)
    s.set_epoch(1)
    b = list(s)
    assert sorted(i for _, i in a) == list(range(50)) and a != b
    assert all(e == 1 for e, _ in b)
    assert list(EpochSampler(50, seed=0)) == a


def test_evaluation_only_folder_is_read_whole_as_split_all(tmp_path: Path) -> None:
    """A few real scans with just a labels.tsv (RGBA, gray paper): evaluation reads them all."""
    root = tmp_path / "real"
    (root / "img").mkdir(parents=True)
    words = ["word", "Hello", "or", "level"]
    lines = []
    for i, w in enumerate(words):
        gray = (render_word(w, seed=i).astype(np.float32) * 0.7).astype(np.uint8)  # gray paper
        Image.fromarray(gray).convert("RGBA").save(root / "img" / f"{i}.png")
        lines.append(f"img/{i}.png\t{w}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dm = WordDataModule(source="folder", root=str(root), num_workers=0)
    splits = dm.splits()
    assert [s.text for s in splits["all"]] == words
    assert sum(len(splits[s]) for s in ("train", "val", "test")) == len(words)  # the random split is still there
    item = dm.dataset("all")[1]
    assert item["text"] == "Hello" and item["image"].shape == (1, HEIGHT, WIDTH)
    assert float(item["image"].median()) > 0.95  # gray paper read as white by the one preprocessing path
