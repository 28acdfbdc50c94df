"""Centred words (the ``centred`` arm) and the crop cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import WORDS, render_word, write_folder_dataset
from htr.data.augment import WordTransform
from htr.data.cache import CropCache
from htr.data.datamodule import WordDataModule
from htr.data.preprocess import BACKGROUND, WIDTH, fit_word, load_crop, normalize_contrast, to_canvas
from htr.diagnostics.probes import ProbeSet
from htr.model.module import HTRModule, load_checkpoint


def ink_columns(canvas: np.ndarray) -> tuple[int, int]:
    cols = np.flatnonzero((canvas < 128).any(axis=0))
    return int(cols[0]), int(cols[-1])


def test_centred_canvas_is_the_left_canvas_moved_to_the_middle() -> None:
    word = render_word("pool")
    left, centre = to_canvas(word, "left"), to_canvas(word, "centre")
    width = fit_word(normalize_contrast(word)).shape[1]
    shift = (WIDTH - width) // 2
    assert shift > 20
    np.testing.assert_array_equal(centre[:, shift : shift + width], left[:, :width])
    assert (centre[:, :shift] == BACKGROUND).all() and (centre[:, shift + width :] == BACKGROUND).all()
    a, b = ink_columns(centre)
    assert abs((a + b) / 2 - WIDTH / 2) < 6  # the ink is centred within the word's margin
    with pytest.raises(ValueError, match="align: unknown 'right'"):
        to_canvas(word, "right")  # type: ignore[arg-type]


@pytest.mark.parametrize("augmentation", ["none", "noise"])
def test_transforms_place_words_as_the_model_expects(augmentation: str) -> None:
    crop = normalize_contrast(render_word("word"))
    canvas = WordTransform(augmentation, seed=0, align="centre")(crop, index=3)
    if augmentation == "none":
        np.testing.assert_array_equal(canvas, to_canvas(render_word("word"), "centre"))
    a, b = ink_columns(canvas)
    assert a > 20 and b < WIDTH - 20


def test_probe_sets_move_exactly_between_alignments(tmp_path) -> None:
    root = write_folder_dataset(tmp_path / "words", WORDS[:6], per_word=1, splits=("train", "val"))
    samples = WordDataModule(source="folder", root=str(root), num_workers=0).splits()["val"]
    left = ProbeSet.from_samples(samples)
    centre = ProbeSet.from_samples(samples, align="centre")
    np.testing.assert_array_equal(left.aligned("centre").canvases, centre.canvases)
    np.testing.assert_array_equal(centre.aligned("left").canvases, left.canvases)
    assert left.aligned("left") is left
    left.save(tmp_path / "probes")
    loaded = ProbeSet.load(tmp_path / "probes")
    np.testing.assert_array_equal(loaded.widths, left.widths)
    np.testing.assert_array_equal(loaded.aligned("centre").canvases, centre.canvases)


def test_crop_cache_gives_the_same_canvases_and_is_rebuilt_when_files_change(tmp_path) -> None:
    root = write_folder_dataset(tmp_path / "words", WORDS, per_word=1, splits=("train", "val"))
    plain = WordDataModule(source="folder", root=str(root), augmentation="translate+noise", num_workers=0)
    cached = WordDataModule(source="folder", root=str(root), augmentation="translate+noise", num_workers=0, cache_crops=True, cache_dir=str(tmp_path / "cache"))
    a, b = plain.dataset("train", augment=True), cached.dataset("train", augment=True)
    assert b.crops is not None and len(b.crops) == len(a)
    for key in [(0, 0), (1, 3), (2, len(a) - 1)]:
        assert torch.equal(a[key]["image"], b[key]["image"])
    files = sorted((tmp_path / "cache").glob("*.index.npy"))
    assert len(files) == 1
    # Same files: the cache is read, not rebuilt; a changed image: a new cache.
    CropCache.open_or_build([s.path for s in cached.splits()["train"]], tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.index.npy"))) == 1
    first = cached.splits()["train"][0].path
    render = render_word("changed")
    from PIL import Image

    Image.fromarray(render).save(first)
    fresh = CropCache.open_or_build([s.path for s in cached.splits()["train"]], tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.index.npy"))) == 2
    np.testing.assert_array_equal(fresh[0], load_crop(first))


def test_unreadable_image_in_the_cache_is_replaced_and_named(tmp_path, caplog) -> None:
    root = write_folder_dataset(tmp_path / "words", WORDS[:4], per_word=1, splits=("train", "val"))
    data = WordDataModule(source="folder", root=str(root), num_workers=0, validate_images=False, cache_crops=True)
    bad = data.splits()["train"][1].path
    open(bad, "wb").write(b"not a png")
    ds = data.dataset("train")
    assert ds.crops is not None and ds.crops[1] is None
    item = ds[1]
    assert item["text"] == data.splits()["train"][2].text
    assert f"{bad}: unreadable image" in caplog.text


def test_align_is_saved_in_the_checkpoint(tmp_path) -> None:
    module = HTRModule(align="centre", lstm_units=8, lstm_layers=1, channels=(4, 4, 4, 4, 8))
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    assert load_checkpoint(path).align == "centre"
    old = dict(module.hparams)
    old.pop("align")  # checkpoints written before the option existed read words left-aligned
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": old}, path)
    assert load_checkpoint(path).align == "left"


def test_relevance_grid_draws_each_model_s_words_where_it_read_them(tmp_path) -> None:
    from htr.experiment.figures import relevance_grid

    words = [render_word(w, seed=i) for i, w in enumerate(["are", "pool"])]
    left = ProbeSet(["a", "b"], ["are", "pool"], np.stack([to_canvas(w) for w in words]), np.array([fit_word(normalize_contrast(w)).shape[1] for w in words]))
    maps = {"base": [np.zeros((32, 128))] * 2, "mid": [np.zeros((32, 128))] * 2}
    fig = relevance_grid(maps, left, aligns={"mid": "centre"})
    drawn = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    np.testing.assert_array_equal(drawn[0], left.canvases[0])  # column "base", row 0
    np.testing.assert_array_equal(drawn[1], to_canvas(words[0], "centre"))  # column "mid", row 0 (axes go row by row)
