"""Contrast-normalised crops of a split, decoded once and packed into one memory-mapped file.

Every epoch re-reads each PNG and re-runs :func:`normalize_contrast` (about 1 ms a word on one
core), although the result never changes: only the augmentation after it is random. The cache
stores ``load_crop(path)`` = ``normalize_contrast(load_image(path))`` of every sample, exactly, so training with it
gives the same canvases as without it (tested), while the loader workers only fit, place and
augment. Data loader workers share the file's pages (``np.load(mmap_mode="r")``).

Layout under ``<cache_dir>``: ``<key>.crops.npy`` (all crops' pixels, one flat uint8 array) and
``<key>.index.npy`` ((N, 3) int64: offset, height, width), each written atomically, the index
last. ``key`` hashes the sample paths, their sizes and modification times and this module's
version, so a changed dataset builds a new cache instead of reading a stale one.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from htr.data.preprocess import ImageError, load_crop
from htr.errors import HTRError
from htr.io import write_npy

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when normalize_contrast or load_image change what they return


class CacheError(HTRError, RuntimeError):
    """The crop cache cannot be built or read; the message names the folder and what to do."""


def _crop_or_none(path: str) -> np.ndarray | None:
    try:
        return load_crop(path)
    except ImageError:
        return None


def cache_key(paths: Sequence[str | Path]) -> str:
    h = hashlib.sha256(f"crops-v{CACHE_VERSION}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


class CropCache:
    """Random access to the cached crops of one list of files (``cache[i]`` -> 2-D uint8 array,
    or None for a file that could not be read when the cache was built)."""

    def __init__(self, pixels: np.ndarray, index: np.ndarray) -> None:
        self.pixels, self.index = pixels, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> np.ndarray | None:
        offset, h, w = (int(v) for v in self.index[i])
        if h == 0:
            return None
        return np.asarray(self.pixels[offset : offset + h * w]).reshape(h, w)

    @classmethod
    def open_or_build(cls, paths: Sequence[str | Path], cache_dir: str | Path, workers: int | None = None) -> CropCache:
        """The cache of ``paths`` in ``cache_dir``; built first (``workers`` processes) if missing."""
        cache_dir = Path(cache_dir)
        key = cache_key(paths)
        pixels_file, index_file = cache_dir / f"{key}.crops.npy", cache_dir / f"{key}.index.npy"
        if not index_file.is_file():
            build(paths, pixels_file, index_file, workers)
        try:
            index = np.load(index_file)
            pixels = np.load(pixels_file, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise CacheError(f"{cache_dir}: unreadable crop cache {key} ({err}); delete the folder to rebuild it") from None
        if len(index) != len(paths) or (len(index) and int((index[:, 0] + index[:, 1] * index[:, 2]).max()) > pixels.size):
            raise CacheError(f"{cache_dir}: crop cache {key} does not match its {len(paths)} files; delete the folder to rebuild it")
        return cls(pixels, index)


def build(paths: Sequence[str | Path], pixels_file: Path, index_file: Path, workers: int | None = None) -> None:
    """Decode + normalise every file (in parallel) and write the two cache files atomically."""
    workers = max(1, workers or os.cpu_count() or 1)
    log.info("caching %d contrast-normalised crops in %s (%d processes; once per dataset)", len(paths), pixels_file.parent, workers)
    strs = [str(p) for p in paths]
    if workers > 1 and len(strs) > 256:
        with ProcessPoolExecutor(workers) as pool:
            crops = list(pool.map(_crop_or_none, strs, chunksize=256))
    else:
        crops = [_crop_or_none(p) for p in strs]
    index = np.zeros((len(crops), 3), np.int64)
    offset = 0
    for i, c in enumerate(crops):
        if c is not None:
            index[i] = (offset, *c.shape)
            offset += c.size
    pixels = np.empty(offset, np.uint8)
    for (o, h, w), c in zip(index, crops):
        if c is not None:
            pixels[o : o + h * w] = c.ravel()
    try:
        pixels_file.parent.mkdir(parents=True, exist_ok=True)
        for path, array in ((pixels_file, pixels), (index_file, index)):  # index last: it marks a complete cache
            write_npy(path, array)
    except OSError as err:
        raise CacheError(f"{pixels_file.parent}: cannot write the crop cache ({err.strerror}); set --data.cache_dir to a writable folder or --data.cache_crops false") from None
