"""The synthetic dataset: which writer writes which word in which split, and its on-disk cache.

Sample ``index`` of ``split`` depends only on ``(config, split, index)``: changing the size of
a split, or regenerating one split, leaves every other sample as it was. Each split has its own
pool of writers (``n_writers``): val and test are new writers of the training fonts,
``test_unseen`` writers use only the held-out fonts. On disk (see :func:`materialize`)::

    <root>/manifest.json
    <root>/<split>/labels.tsv          images/000123.png<TAB>text
    <root>/<split>/images/*.png
    <root>/<split>/manifest.json
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from htr.data.synthetic.fonts import FontSpec, available_fonts, heldout_fonts, split_fonts
from htr.data.synthetic.text import sample_text
from htr.data.synthetic.writer import NO_HAND, Hand, Writer, binarize_scan, render_word, sample_hand, sample_writer
from htr.io import write_json

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3
SPLITS = ("train", "val", "test", "test_unseen")
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3, "test_unseen": 4}
_WRITER_STREAM = 7  # seeds writers apart from samples
_HAND_STREAM = 11  # seeds the shape habits (Hand) apart from everything that existed before them
_CAPTURE_STREAM = 13  # seeds the capture tool's binarisation apart from the rest of the scan
# Options that change no image when off (share 0), with the settings only they use: the manifest
# leaves them out then, so data made before an option existed stays valid.
_LEFT_OUT_WHEN_OFF = {"p_restroke": ("restroke_jitter",), "p_connect": (), "p_attached": (), "p_binarize": ()}


@dataclass
class SyntheticConfig:
    """Everything that decides the generated data (recorded in the manifest)."""

    seed: int = 0
    n_train: int = 60000
    n_val: int = 1000
    n_test: int = 1000
    n_test_unseen: int = 1000
    # Writers per split (each a font + habits); a sample picks one of its split's writers.
    n_writers: int = 3000
    # Held-out fonts (names, file names or families); None: the vendored held-out set.
    heldout_fonts: tuple[str, ...] | None = None
    # Glob of extra .ttf/.otf/.woff/.woff2 files added to the font pool (e.g. "~/fonts/*.ttf").
    extra_fonts: str | None = None
    # Text mix: share of punctuation tokens and of numbers; the rest are words.
    p_punctuation: float = 0.10
    p_number: float = 0.02
    p_capitalized: float = 0.12
    p_upper: float = 0.01
    vocabulary_size: int = 30000
    # Word probability ~ frequency ** word_freq_power (1.0 = natural Zipf frequencies).
    word_freq_power: float = 1.0
    # Font size (em, px) range of the raw rendering; IAM crops are ~40-120 px high.
    font_size: tuple[int, int] = (36, 72)
    # Letter shapes beyond the fonts' (htr/data/synthetic/strokes.py): share of writers whose
    # strokes are redrawn along their centre line with a round pen, the largest centre-line
    # displacement (fraction of the size), and share of print-font writers who join letters.
    # Half and half: measured by ablation (data/README.md), 0 and 0 give the fonts-only generator.
    p_restroke: float = 0.5
    restroke_jitter: float = 0.04
    p_connect: float = 0.5
    # Text as in prose: share of words with punctuation attached ("said," "Roy's" "Mr.").
    p_attached: float = 0.0
    # Share of crops binarised as by a capture tool (black on white, light strokes broken):
    # real handwriting often reaches a model binarised (data/real-handwriting/ is).
    p_binarize: float = 0.0

    def __post_init__(self) -> None:
        if self.heldout_fonts is not None:
            self.heldout_fonts = tuple(self.heldout_fonts)
        self.font_size = tuple(self.font_size)  # type: ignore[assignment]
        for name in ("n_train", "n_val", "n_test", "n_test_unseen"):
            if getattr(self, name) < 0:
                raise ValueError(f"synthetic.{name} must be >= 0, got {getattr(self, name)}")
        if self.n_writers < 1:
            raise ValueError(f"synthetic.n_writers must be >= 1, got {self.n_writers}")

    def size(self, split: str) -> int:
        check_split(split)
        return getattr(self, f"n_{split}")

    def to_dict(self) -> dict:
        """The config as the manifests record it. Letter-shape, prose and capture options that are off are
        left out: they change no image, so data made before they existed stays valid."""
        d = dataclasses.asdict(self)
        for option, governed in _LEFT_OUT_WHEN_OFF.items():
            if d[option] <= 0:
                for key in (option, *governed):
                    del d[key]
        d["heldout_fonts"] = None if self.heldout_fonts is None else list(self.heldout_fonts)
        d["font_size"] = list(self.font_size)
        return d

    def fonts(self, split: str) -> list[FontSpec]:
        """The font pool of ``split``."""
        check_split(split)
        fonts = available_fonts(self.extra_fonts)
        return split_fonts(fonts, heldout_fonts(fonts, self.heldout_fonts), split)


def check_split(split: str) -> None:
    if split not in _SPLIT_CODE:
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")


def _choose_font(pool: Sequence[FontSpec], rng: np.random.Generator) -> FontSpec:
    """Families uniformly, then a file of the family: a family with 3 weights is not 3x as common."""
    families = sorted({f.family for f in pool})
    fam = families[int(rng.integers(len(families)))]
    files = [f for f in pool if f.family == fam]
    return files[int(rng.integers(len(files)))]


def split_writer(config: SyntheticConfig, split: str, writer_id: int) -> Writer:
    """Writer ``writer_id`` of ``split``'s pool (deterministic)."""
    rng = np.random.default_rng(np.random.SeedSequence([GENERATOR_VERSION, config.seed, _SPLIT_CODE[split], _WRITER_STREAM, writer_id]))
    return sample_writer(_choose_font(config.fonts(split), rng), rng, config.font_size)


def split_hand(config: SyntheticConfig, split: str, writer_id: int, joined: bool) -> Hand:
    """The shape habits of writer ``writer_id`` of ``split`` (deterministic; NO_HAND when none)."""
    if config.p_restroke <= 0 and config.p_connect <= 0:
        return NO_HAND
    rng = np.random.default_rng(np.random.SeedSequence([GENERATOR_VERSION, config.seed, _SPLIT_CODE[split], _HAND_STREAM, writer_id]))
    return sample_hand(rng, config.p_restroke, config.restroke_jitter, config.p_connect, joined)


def render_sample_with_writer(config: SyntheticConfig, split: str, index: int) -> tuple[np.ndarray, str, Writer]:
    """:func:`render_sample` that also says which writer wrote the sample."""
    check_split(split)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    rng = np.random.default_rng(np.random.SeedSequence([GENERATOR_VERSION, config.seed, _SPLIT_CODE[split], index]))
    writer_id = int(rng.integers(config.n_writers))
    writer = split_writer(config, split, writer_id)
    text = sample_text(config, rng, writer.font.chars)
    hand = split_hand(config, split, writer_id, writer.font.joined)
    hand_rng = None if hand == NO_HAND else np.random.default_rng(np.random.SeedSequence([GENERATOR_VERSION, config.seed, _SPLIT_CODE[split], index, _HAND_STREAM]))
    image = render_word(writer, text, rng, hand, hand_rng)
    if config.p_binarize > 0:
        capture_rng = np.random.default_rng(np.random.SeedSequence([GENERATOR_VERSION, config.seed, _SPLIT_CODE[split], index, _CAPTURE_STREAM]))
        if capture_rng.random() < config.p_binarize:
            image = binarize_scan(image, capture_rng)
    return image, text, writer


def render_sample(config: SyntheticConfig | None, split: str, index: int) -> tuple[np.ndarray, str]:
    """Sample ``index`` of ``split``: (raw word crop as 2-D uint8, label). Deterministic."""
    image, text, _ = render_sample_with_writer(config or SyntheticConfig(), split, index)
    return image, text


# --------------------------------------------------------------------------------------
# Materialising to the project's folder format
# --------------------------------------------------------------------------------------


def _split_fingerprint(config: SyntheticConfig, split: str) -> dict:
    d = config.to_dict()
    for s in SPLITS:
        d.pop(f"n_{s}")
    return {
        "generator_version": GENERATOR_VERSION,
        "split": split,
        "n": config.size(split),
        "config": d,
        "fonts": sorted(f"{f.name}:{f.dropped}" for f in config.fonts(split)),
    }


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_tmp(root: Path) -> None:
    """Delete temp folders left by interrupted generations (their process is gone)."""
    for p in root.glob(".*.tmp-*"):
        m = re.search(r"\.tmp-(\d+)-", p.name)
        if m and not _pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


_WORKER_STATE: dict = {}


def _worker_init(config: SyntheticConfig, split: str, out_dir: str) -> None:
    torch = sys.modules.get("torch")  # keep torch, if the parent loaded it, to one thread
    if torch is not None:
        torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _WORKER_STATE.update(config=config, split=split, out_dir=out_dir)


def _write_one(index: int) -> tuple[int, str, str]:
    cfg, split, out_dir = _WORKER_STATE["config"], _WORKER_STATE["split"], _WORKER_STATE["out_dir"]
    image, text = render_sample(cfg, split, index)
    rel = f"images/{index:06d}.png"
    if not cv2.imwrite(os.path.join(out_dir, rel), image):
        raise OSError(f"could not write {os.path.join(out_dir, rel)}")
    return index, rel, text


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool) -> Iterator:
    if not enabled:
        return iter(iterable)
    from tqdm import tqdm

    return iter(tqdm(iterable, total=total, desc=desc, unit="img", dynamic_ncols=True))


def _generate_split(root: Path, config: SyntheticConfig, split: str, fingerprint: dict, progress: bool, workers: int) -> None:
    n = config.size(split)
    tmp = root / f".{split}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (tmp / "images").mkdir(parents=True)
    try:
        desc = f"synthetic {split}"
        if workers > 1 and n >= 200:
            import multiprocessing as mp

            # Not fork: a process that already ran torch or OpenCV ops (a training, an augmented
            # batch) holds thread pools whose locks a forked child inherits held, and the child
            # hangs on its first threaded call. A fork server is a fresh process (cheap on Linux).
            ctx = mp.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
            with ctx.Pool(workers, initializer=_worker_init, initargs=(config, split, str(tmp))) as pool:
                rows = [(rel, text) for _, rel, text in _progress(pool.imap(_write_one, range(n), chunksize=32), n, desc, progress)]
        else:
            _worker_init(config, split, str(tmp))
            rows = [(rel, text) for _, rel, text in _progress(map(_write_one, range(n)), n, desc, progress)]
        with open(tmp / "labels.tsv", "w", encoding="utf-8", newline="\n") as f:
            for rel, text in rows:
                f.write(f"{rel}\t{text}\n")
        write_json(tmp / "manifest.json", fingerprint)
        dest = root / split
        if dest.exists():
            old = root / f".{split}.old.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(dest, old)
            os.rename(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def materialize(
    root: str | Path,
    config: SyntheticConfig | None = None,
    progress: bool = True,
    workers: int | None = None,
    splits: Sequence[str] = SPLITS,
) -> Path:
    """Generate the synthetic dataset under ``root`` unless it is already there (cache).

    Each split is written into a temp folder and renamed into place only when complete, with
    its own ``manifest.json``; a split whose manifest records the same generator version,
    config and fonts is kept as is (so changing ``n_test_unseen`` regenerates only
    ``test_unseen``). ``<root>/manifest.json`` records the whole config. ``workers``: processes
    (default: every CPU core), started fresh, so a script that calls this with ``workers > 1``
    needs the usual ``if __name__ == "__main__":`` guard. Returns ``root``.
    """
    config = config or SyntheticConfig()
    workers = workers or os.cpu_count() or 1
    root = Path(root)
    top = {"generator_version": GENERATOR_VERSION, "config": config.to_dict(), "splits": {s: config.size(s) for s in SPLITS}}
    existing = _read_json(root / "manifest.json")
    if existing is not None and existing.get("generator_version") == top["generator_version"] and existing.get("config") == top["config"] and all((root / s / "labels.tsv").is_file() for s in splits):
        return root
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(root)
    for split in splits:
        fingerprint = _split_fingerprint(config, split)
        dest = root / split
        if dest.exists():
            found = _read_json(dest / "manifest.json")
            if found is None:
                raise FileExistsError(f"{dest} exists but was not written by this generator (no manifest.json): move it away or choose another root")
            if found == fingerprint and (dest / "labels.tsv").is_file():
                continue
        t0 = time.perf_counter()
        _generate_split(root, config, split, fingerprint, progress, workers)
        log.info("synthetic %s: %d images in %.1f s", split, config.size(split), time.perf_counter() - t0)
    if tuple(splits) == SPLITS:
        write_json(root / "manifest.json", top)
    return root
