"""Probe sets and the full diagnostics of a model on them, computed once for logs and reports.

A probe set is a fixed list of validation words (ids, texts, 32x128 canvases made by the
project's preprocessing), saved next to a run so every epoch and every checkpoint is probed
on the same images. :func:`diagnose` runs the shift sweeps, relevance maps and deletion
curves once and derives the flat shortcut scores from them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from htr.data.preprocess import load_image, to_canvas
from htr.data.readers import WordSample
from htr.diagnostics.faithfulness import deletion_curve
from htr.diagnostics.relevance import relevance
from htr.diagnostics.scores import summarize
from htr.diagnostics.shift import ShiftSweep, shift_sweep
from htr.io import atomic_write_bytes
from htr.text import Charset


class ProbeError(ValueError):
    """An unusable probe set; the message says which file/split and what to do."""


@dataclass
class ProbeSet:
    ids: list[str]
    texts: list[str]
    canvases: np.ndarray  # (N, 32, 128) uint8

    def __post_init__(self) -> None:
        if not self.ids:
            raise ProbeError("empty probe set: the probe split has no usable samples")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_samples(cls, samples: Sequence[WordSample]) -> ProbeSet:
        """Load and preprocess the probe images exactly as evaluation does."""
        return cls([s.id for s in samples], [s.text for s in samples], np.stack([to_canvas(load_image(s.path)) for s in samples]) if samples else np.zeros((0, 32, 128), np.uint8))

    def save(self, path: str | Path) -> None:
        """``probes.npz`` (canvases) + ``probes.json`` (ids, texts) beside it, written atomically."""
        path = Path(path)
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, canvases=self.canvases)
        atomic_write_bytes(path.with_suffix(".npz"), buf.getvalue())
        atomic_write_bytes(path.with_suffix(".json"), json.dumps({"ids": self.ids, "texts": self.texts}, indent=1).encode())

    @classmethod
    def load(cls, path: str | Path) -> ProbeSet:
        path = Path(path)
        npz, meta = path.with_suffix(".npz"), path.with_suffix(".json")
        if not npz.is_file() or not meta.is_file():
            raise ProbeError(f"{path}: probe set not found (need {npz.name} and {meta.name})")
        info = json.loads(meta.read_text())
        canvases = np.load(npz)["canvases"]
        if len(canvases) != len(info["ids"]):
            raise ProbeError(f"{path}: {len(canvases)} canvases but {len(info['ids'])} ids; delete and let it be rebuilt")
        return cls(list(info["ids"]), list(info["texts"]), canvases)


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

    scores: dict[str, float]
    sweeps: list[ShiftSweep]
    relevance_maps: list[np.ndarray] = field(default_factory=list)  # first ``relevance_probes`` probes
    deletions: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)

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


def diagnose(
    model: nn.Module,
    probes: ProbeSet,
    charset: Charset,
    max_shift: int = 16,
    relevance_probes: int = 4,
    relevance_kwargs: dict[str, Any] | None = None,
    deletion: bool = True,
    **score_kwargs: Any,
) -> Diagnosis:
    """Shift sweeps of every probe, relevance maps (+ deletion curves) of the first few, scores."""
    sweeps = [shift_sweep(model, c, t, charset, max_shift) for c, t in zip(probes.canvases, probes.texts)]
    kwargs = {"window": 2, "stride": 2, **(relevance_kwargs or {})}
    maps = [relevance(model, c, t, charset, **kwargs) for c, t in list(zip(probes.canvases, probes.texts))[:relevance_probes]]
    deletions = [deletion_curve(model, c, t, charset, m) for c, t, m in zip(probes.canvases, probes.texts, maps)] if deletion else []
    scores = summarize(model, probes.canvases, probes.texts, charset, sweeps, maps, deletions, **score_kwargs)
    return Diagnosis(scores, sweeps, maps, deletions)


def shortcut_scores(
    model: nn.Module,
    canvases: Sequence[np.ndarray],
    texts: Sequence[str],
    charset: Charset,
    max_shift: int = 16,
    relevance_probes: int = 0,
    relevance_kwargs: dict[str, Any] | None = None,
    aopc: bool = False,
    **score_kwargs: Any,
) -> dict[str, float]:
    """Shortcut scores of ``model`` on probe canvases (uint8 H x W) with their texts (see scores.py).

    Cost: one batched forward of max_shift+1 images per probe plus two of the probe set;
    relevance maps (``relevance_probes`` > 0; default 2x2 windows, stride 2) dominate when on.
    """
    if len(canvases) != len(texts) or not len(texts):
        raise ValueError(f"need one text per probe canvas, got {len(canvases)} canvases and {len(texts)} texts")
    probes = ProbeSet([str(i) for i in range(len(texts))], list(texts), np.stack(canvases))
    return diagnose(model, probes, charset, max_shift, relevance_probes, relevance_kwargs, deletion=aopc, **score_kwargs).scores
