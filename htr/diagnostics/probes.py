"""Probe sets, and what the diagnostics found on one (:class:`Diagnosis`).

A probe set is a fixed list of validation words (ids, texts, 32x128 canvases made by the
project's preprocessing), saved next to a run so every epoch and every checkpoint is probed
on the same images. :meth:`htr.diagnostics.settings.DiagnosticsSettings.diagnose` runs the
shift sweeps, relevance maps, deletion curves and the specks CER once and derives the shortcut
scores from them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from htr.data.preprocess import HEIGHT, WIDTH, Alignment, crop_to_canvas, fit_word, load_crop, place, word_x
from htr.data.readers import WordSample
from htr.diagnostics.scores import ShortcutScores
from htr.diagnostics.shift import ShiftSweep
from htr.errors import HTRError
from htr.io import atomic_write_bytes, write_npz


class ProbeError(HTRError, ValueError):
    """An unusable probe set; the message says which file/split and what to do."""


@dataclass
class ProbeSet:
    """Probe words as canvases placed the way a model reads them (``align``); ``widths`` (the
    fitted words' widths) let :meth:`aligned` move them exactly for a model trained otherwise."""

    ids: list[str]
    texts: list[str]
    canvases: np.ndarray  # (N, 32, 128) uint8
    widths: np.ndarray | None = None  # (N,) int; None: taken from the ink extent (older probe files)
    align: Alignment = "left"

    def __post_init__(self) -> None:
        if not self.ids:
            raise ProbeError("empty probe set: the probe split has no usable samples")
        if self.widths is None:
            self.widths = np.array([_ink_width(c, self.align) for c in self.canvases], dtype=np.int64)

    def aligned(self, align: Alignment) -> ProbeSet:
        """The same words placed for a model with ``align`` (the same object if already so)."""
        if align == self.align:
            return self
        out = []
        for canvas, w in zip(self.canvases, self.widths):
            x0 = word_x(int(w), self.align, canvas.shape[1])
            out.append(place(canvas[:, x0 : x0 + int(w)], word_x(int(w), align, canvas.shape[1]), 0, *canvas.shape))
        return ProbeSet(self.ids, self.texts, np.stack(out), self.widths.copy(), align)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_samples(cls, samples: Sequence[WordSample], align: Alignment = "left") -> ProbeSet:
        """Load and preprocess the probe images exactly as evaluation does (``to_canvas``)."""
        words = [fit_word(load_crop(s.path)) for s in samples]  # fitted once here: their widths are kept
        canvases = np.stack([crop_to_canvas(w, align) for w in words]) if words else np.zeros((0, HEIGHT, WIDTH), np.uint8)
        return cls([s.id for s in samples], [s.text for s in samples], canvases, np.array([w.shape[1] for w in words], np.int64), align)

    def save(self, path: str | Path) -> None:
        """``probes.npz`` (canvases) + ``probes.json`` (ids, texts) beside it, written atomically."""
        path = Path(path)
        write_npz(path.with_suffix(".npz"), canvases=self.canvases, widths=self.widths)
        atomic_write_bytes(path.with_suffix(".json"), json.dumps({"ids": self.ids, "texts": self.texts, "align": self.align}, indent=1).encode())

    @classmethod
    def load(cls, path: str | Path) -> ProbeSet:
        path = Path(path)
        npz, meta = path.with_suffix(".npz"), path.with_suffix(".json")
        if not npz.is_file() or not meta.is_file():
            raise ProbeError(f"{path}: probe set not found (need {npz.name} and {meta.name})")
        try:
            info = json.loads(meta.read_text())
            arrays = np.load(npz)
            canvases = arrays["canvases"]
        except (ValueError, OSError, KeyError) as err:  # not a probe set this project saved (torn, or another file)
            raise ProbeError(f"{path}: not a readable probe set ({type(err).__name__}: {err})") from None
        if len(canvases) != len(info["ids"]):
            raise ProbeError(f"{path}: {len(canvases)} canvases but {len(info['ids'])} ids; delete and let it be rebuilt")
        widths = arrays["widths"] if "widths" in arrays.files else None
        return cls(list(info["ids"]), list(info["texts"]), canvases, widths, info.get("align", "left"))


def _ink_width(canvas: np.ndarray, align: Alignment) -> int:
    """Width of a placed word judged from its non-background columns (for probe files saved
    without widths): exact unless the word's own edge columns are pure background."""
    cols = np.flatnonzero((np.asarray(canvas) != 255).any(axis=0))
    if not cols.size:
        return int(canvas.shape[1])
    if align == "left":
        return int(cols[-1]) + 1
    return int(canvas.shape[1] - 2 * min(int(cols[0]), canvas.shape[1] - 1 - int(cols[-1])))


def select_probes(samples: Sequence[WordSample], n: int = 16, seed: int = 0, min_chars: int = 2) -> list[WordSample]:
    """A seeded choice of ``n`` words with at least ``min_chars`` letters, in the split's order."""
    words = [s for s in samples if sum(c.isalnum() for c in s.text) >= min_chars]
    if not words:
        raise ProbeError(f"no sample with >= {min_chars} letters to probe")
    chosen = sorted(random.Random(seed).sample(range(len(words)), min(n, len(words))))
    return [words[i] for i in chosen]


@dataclass
class Diagnosis:
    """Everything the diagnostics found for one model on one probe set."""

    scores: ShortcutScores
    sweeps: list[ShiftSweep]
    relevance_maps: list[np.ndarray] = field(default_factory=list)  # first ``relevance_probes`` probes
    deletions: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)

    def to_flat(self) -> dict[str, float]:
        """The shortcut scores as runs log them and results files hold them (:meth:`ShortcutScores.to_flat`)."""
        return self.scores.to_flat()

    def probe_rows(self, probes: ProbeSet) -> list[dict[str, Any]]:
        """Per-probe table rows: text, recognised text and score at shift 0, worst shift."""
        rows = []
        for i, (pid, text, sweep) in enumerate(zip(probes.ids, probes.texts, self.sweeps)):
            wrong = [int(s) for s, t in zip(sweep.shifts, sweep.texts) if t != text]
            rows.append({
                "id": pid, "text": text, "recognised": sweep.texts[0], "score": float(sweep.scores[0]),
                "min_score": float(sweep.scores.min()), "first_wrong_shift": wrong[0] if wrong else -1,
                "aopc": float(self.deletions[i][2]) if i < len(self.deletions) else float("nan"),
            })
        return rows
