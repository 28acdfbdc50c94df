"""One LightningDataModule for every source: the embedded synthetic set, IAM, or a folder."""

from __future__ import annotations

import difflib
import inspect
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from htr.data.augment import Augmentation, Translation, WordTransform
from htr.data.cache import CropCache
from htr.data.preprocess import Alignment, ImageError, load_crop, load_image, normalize
from htr.data.readers import (
    DatasetError,
    SkipReport,
    WordSample,
    check_split_fractions,
    filter_labels,
    read_iam_words,
    read_labels_tsv,
    split_by_form,
    split_by_lists,
    split_random,
)
from htr.errors import ConfigError, at_least
from htr.text import IAM_CHARSET, Charset, CharsetError

log = logging.getLogger(__name__)

Source = Literal["synthetic", "iam", "folder"]
SOURCES: tuple[str, ...] = get_args(Source)


class WordDataset(Dataset):
    """Samples -> {"image": 1x32x128 tensor, "text", "id"}.

    Keys are an index or an ``(epoch, index)`` pair (from ``EpochSampler``) so that the
    augmentation of a sample depends only on (seed, epoch, index). An image that fails to
    load is replaced by the next loadable sample, with a warning naming the file. ``crops``
    (a :class:`CropCache` of the same samples) replaces decoding + contrast normalisation.
    """

    def __init__(self, samples: list[WordSample], transform: WordTransform, crops: CropCache | None = None) -> None:
        if not samples:
            raise DatasetError("empty dataset split: no usable samples (see the warnings above for what was skipped)")
        if crops is not None and len(crops) != len(samples):
            raise ValueError(f"crop cache of {len(crops)} samples for a split of {len(samples)}")
        self.samples = samples
        self.transform = transform
        self.crops = crops

    def _crop(self, i: int) -> np.ndarray:
        if self.crops is None:
            return load_crop(self.samples[i].path)
        crop = self.crops[i]
        if crop is None:
            raise ImageError(f"{self.samples[i].path}: unreadable image (when the crop cache was built)")
        return crop

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if not 0 <= index < len(self.samples):
            raise IndexError(f"sample {index} of {len(self.samples)}")
        for attempt in range(min(len(self.samples), 16)):
            i = (index + attempt) % len(self.samples)
            sample = self.samples[i]
            try:
                crop = self._crop(i)
                break
            except ImageError as err:
                log.warning("%s; replaced by the next sample in this batch", err)
        else:
            raise DatasetError(f"16 unreadable images in a row from {sample.path}; check the dataset")
        canvas = self.transform(crop, index=index, epoch=epoch)
        return {"image": normalize(canvas), "text": sample.text, "id": sample.id}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "image": torch.stack([it["image"] for it in items]),
        "text": [it["text"] for it in items],
        "id": [it["id"] for it in items],
    }


class EpochSampler(Sampler):
    """Seeded shuffle per epoch that yields ``(epoch, index)``; shards itself across DDP ranks.

    Evaluation loaders use it unshuffled, so that under DDP each rank sees its share and the
    torchmetrics sync gives corpus-level CER/WER (the last share is padded by wrapping, as
    Lightning's DistributedSampler does).

    Lightning calls ``set_epoch`` on it each epoch (configs set
    ``trainer.use_distributed_sampler: false`` so it is not wrapped).
    """

    def __init__(self, size: int, seed: int, shuffle: bool = True) -> None:
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard(self) -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        rank, world = self._shard()
        per_rank = -(-self.size // world)
        order = (order + order[: per_rank * world - self.size])[rank::world]  # equal shares: pad by wrapping
        return iter([(self.epoch, i) for i in order])

    def __len__(self) -> int:
        return -(-self.size // self._shard()[1])


class WordDataModule(pl.LightningDataModule):
    """Word images from ``source`` under ``root`` -> batches of 1x32x128 images and texts.

    Args:
        source: ``synthetic`` (embedded default, generated into ``root`` on first use),
            ``iam`` (``root`` holds words.txt and words/), or ``folder`` (``root`` holds
            labels.tsv, or train/ val/ test/ folders each with a labels.tsv).
        charset: ``iam`` (IAM's 79 characters), ``auto`` (from the training labels) or the
            characters themselves. It is linked to ``model.charset`` and saved in checkpoints.
        augmentation: ``none`` | ``translate`` | ``noise`` | ``translate+noise`` (train only).
        translation: overrides of ``htr.data.augment.Translation`` (how ``translate`` scales,
            shears and places words; e.g. ``{scale: [0.8, 1.0], p_in_place: 0.2}``).
        align: where words sit on the canvas, ``left`` (IAM) or ``centre``; linked to
            ``model.align`` and saved in checkpoints, so evaluation places words the same way.
        seed: seed of the data order, the augmentation and random splits.
        split_fractions, split_files: IAM/folder splits (random by form/sample, or id lists).
        include_err: keep IAM words whose segmentation is flagged ``err``.
        unknown_chars: ``skip`` labels with characters outside the charset, or ``map`` them.
        validate_images: decode every image once at set-up, skipping (and counting) bad ones.
        synthetic: overrides of ``htr.data.synthetic.SyntheticConfig`` (sizes, fonts, seed).
        limit_train: use only the first N training samples (quick runs, overfitting tests).
        test_split, test_augmentation: what ``test_dataloader`` serves (e.g. ``noise`` to
            measure noise robustness on a whole split).
        cache_crops: decode + contrast-normalise every image once into a memory-mapped cache
            (``htr.data.cache``; same canvases, less work per epoch) under ``cache_dir``
            (default ``<root>/.crops``).
    """

    def __init__(
        self,
        source: Source = "synthetic",
        root: str = "data/synthetic",
        charset: str = "iam",
        augmentation: Augmentation = "none",
        translation: dict[str, Any] | None = None,
        align: Alignment = "left",
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 2,
        seed: int = 0,
        split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
        split_files: dict[str, str] | None = None,
        include_err: bool = False,
        unknown_chars: Literal["skip", "map"] = "skip",
        validate_images: bool = True,
        synthetic: dict[str, Any] | None = None,
        limit_train: int | None = None,
        test_split: str = "test",
        test_augmentation: Augmentation = "none",
        cache_crops: bool = False,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        # Every value is checked here, where it is defined: a bad one is one line naming it,
        # before any data is read or generated (not a traceback from a DataLoader much later).
        if source not in SOURCES:
            raise ConfigError("data.source", f"unknown {source!r}; use one of {', '.join(SOURCES)}")
        for name, value, low in (("batch_size", batch_size, 1), ("eval_batch_size", eval_batch_size, 1), ("num_workers", num_workers, 0), ("limit_train", limit_train, 1)):
            at_least(f"data.{name}", value, low)
        check_split_fractions(split_fractions)
        if charset not in ("iam", "auto"):
            try:
                Charset(charset)
            except CharsetError as err:
                raise ConfigError("data.charset", str(err)) from None
        if synthetic:
            from htr.data.synthetic import SyntheticConfig  # the generator only when asked for

            try:
                SyntheticConfig(**synthetic)
            except (TypeError, ValueError) as err:
                raise ConfigError("data.synthetic", str(err).replace("SyntheticConfig.__init__() got an ", "")) from None
        # The resolved charset lives in the model's hparams; keeping the spec here too would clash.
        self.save_hyperparameters(ignore=["charset"])
        self.charset_spec = charset
        self.root = Path(root)
        try:
            moves = Translation(**(translation or {}))
        except TypeError as err:
            raise ConfigError("data.translation", f"{err}; fields: scale, p_scale, shear, rotate, p_affine, p_in_place") from None
        self.train_transform = WordTransform(augmentation, seed, align, moves)
        self.eval_transform = WordTransform("none", seed, align)
        self.test_transform = WordTransform(test_augmentation, seed + 1, align)
        self._splits: dict[str, list[WordSample]] | None = None
        self.skip_reports: list[SkipReport] = []

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], option: str = "data", **fixed: Any) -> WordDataModule:
        """The data module of a config's ``data:`` mapping (``fixed`` over it), a bad key or value
        named where the config has it (``option``: e.g. ``extra_sets.real.data``)."""
        known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        for key in settings:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                raise ConfigError(f"{option}.{key}", f"unknown setting{f' (did you mean {close[0]}?)' if close else ''}; WordDataModule takes {', '.join(known)}")
        try:
            return cls(**{**settings, **fixed})
        except ConfigError as err:
            if option == "data" or not err.option.startswith("data."):
                raise
            raise ConfigError(option + err.option[len("data"):], err.problem) from None

    # ---- data discovery -------------------------------------------------------------
    def prepare_data(self, splits: Sequence[str] | None = None) -> None:
        """Generate the synthetic data if missing: all splits, or only ``splits`` (evaluation needs
        a few thousand images, not the 20k training set)."""
        if self.hparams.source == "synthetic":
            from htr.data.synthetic import SPLITS, SyntheticConfig, materialize

            wanted = SPLITS if splits is None else tuple(s for s in SPLITS if s in splits)  # unknown names: reported later
            materialize(self.root, SyntheticConfig(**(self.hparams.synthetic or {})), splits=wanted)

    @property
    def charset(self) -> str:
        """The model's characters (linked to ``model.charset`` by train.py)."""
        spec = self.charset_spec
        if spec == "iam":
            return IAM_CHARSET
        if spec == "auto":
            if self.hparams.source == "synthetic":
                self.prepare_data()
            raw = self._raw_splits()["train"]
            return Charset.from_texts(s.text for s in raw if s.text.strip() and not any(c in s.text for c in "\t\r\n")).chars
        return spec

    def _raw_splits(self) -> dict[str, list[WordSample]]:
        hp = self.hparams
        if hp.source == "iam":
            samples, report = read_iam_words(self.root, hp.include_err)
            self.skip_reports.append(report)
            if hp.split_files:
                return split_by_lists(samples, dict(hp.split_files))
            return split_by_form(samples, tuple(hp.split_fractions), hp.seed)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder not found; set --data.root (and --data.source)")
        split_dirs = sorted(p.parent.name for p in self.root.glob("*/labels.tsv"))
        if split_dirs:
            # Synthetic data may be generated split by split (evaluation); folders must be whole.
            if hp.source != "synthetic" and ("train" not in split_dirs or "val" not in split_dirs):
                raise DatasetError(f"{self.root}: split folders {split_dirs} found but train/ and val/ are required")
            out = {}
            for name in split_dirs:
                out[name], report = read_labels_tsv(self.root / name / "labels.tsv")
                self.skip_reports.append(report)
            return out
        samples, report = read_labels_tsv(self.root / "labels.tsv")
        self.skip_reports.append(report)
        splits = split_by_lists(samples, dict(hp.split_files)) if hp.split_files else split_random(samples, tuple(hp.split_fractions), hp.seed)
        # An evaluation-only set (e.g. a few real scans) is read whole as split "all".
        return {**splits, "all": samples}

    def splits(self) -> dict[str, list[WordSample]]:
        """Usable samples per split (labels filtered against the charset, bad images dropped)."""
        if self._splits is None:
            charset = Charset(self.charset)
            out = {}
            for name, samples in self._raw_splits().items():
                kept, report = filter_labels(samples, charset, f"{self.root} [{name}]", self.hparams.unknown_chars)
                self.skip_reports.append(report)
                if self.hparams.validate_images and self.hparams.source != "synthetic":
                    kept = self._drop_unreadable(kept, f"{self.root} [{name}]")
                if name == "train" and self.hparams.limit_train:
                    kept = kept[: self.hparams.limit_train]
                out[name] = kept
            self._splits = out
            for name, kept in out.items():
                log.info("%s split '%s': %d samples", self.root, name, len(kept))
        return self._splits

    def _drop_unreadable(self, samples: list[WordSample], source: str) -> list[WordSample]:
        report = SkipReport(source)
        kept = []
        for s in samples:
            try:
                load_image(s.path)
                kept.append(s)
            except ImageError:
                report.add("unreadable images", s.id)
        report.warn()
        self.skip_reports.append(report)
        return kept

    def dataset(self, split: str, augment: bool = False) -> WordDataset:
        splits = self.splits()
        if split not in splits:
            raise DatasetError(f"{self.root}: no split '{split}' (have: {', '.join(sorted(splits))})")
        crops = None
        if self.hparams.cache_crops:
            cache_dir = Path(self.hparams.cache_dir) if self.hparams.cache_dir else self.root / ".crops"
            crops = CropCache.open_or_build([s.path for s in splits[split]], cache_dir)  # built once, with every core
        return WordDataset(splits[split], self.train_transform if augment else self.eval_transform, crops)

    def setup(self, stage: str | None = None) -> None:
        self.splits()

    # ---- loaders --------------------------------------------------------------------
    def _loader(self, dataset: WordDataset, batch_size: int, sampler: Sampler | None = None) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=workers,
            collate_fn=collate,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        ds = self.dataset("train", augment=True)
        return self._loader(ds, self.hparams.batch_size, EpochSampler(len(ds), self.hparams.seed))

    def val_dataloader(self) -> DataLoader:
        ds = self.dataset("val")
        return self._loader(ds, self.hparams.eval_batch_size, EpochSampler(len(ds), self.hparams.seed, shuffle=False))

    def test_dataloader(self) -> DataLoader:
        ds = self.dataset(self.hparams.test_split)
        ds.transform = self.test_transform
        return self._loader(ds, self.hparams.eval_batch_size, EpochSampler(len(ds), self.hparams.seed, shuffle=False))
