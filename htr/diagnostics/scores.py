"""Shortcut scores over a probe set: one flat ``dict[str, float]``, ready to log.

Keys (S = shifts 0..max_shift, D = ``drop_from``):

* ``acc@shift{s}``, ``logscore@shift{s}``: word accuracy (best path == text) and mean log
  p(text|x) of the probes shifted right by s px (probes that have no room for s are left out
  of that shift; NaN if none has).
* ``acc_drop@{D}plus`` = acc@shift0 - mean acc over s >= D; ``logscore_drop@{D}plus`` likewise.
* ``periodicity@{period}``: mean over probes of :func:`periodicity` of the log-score curve.
* ``cer@clean``, ``cer@specks``, ``cer_increase@specks``: corpus CER (torchmetrics) without and
  with seeded random dark specks on the paper.
* ``off_ink_evidence``: mean over the first ``relevance_probes`` probes of the share of positive
  evidence more than ``off_ink_distance`` px from any ink pixel (only if relevance_probes > 0).
* ``aopc``: mean deletion-curve AOPC over the same probes (only if ``aopc=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from torch import nn
from torchmetrics.text import CharErrorRate

from htr.data.preprocess import BACKGROUND
from htr.diagnostics.edits import Dot
from htr.diagnostics.faithfulness import deletion_curve
from htr.diagnostics.forward import score_canvases
from htr.diagnostics.relevance import relevance
from htr.diagnostics.shift import periodicity, shift_sweep
from htr.text import Charset

DEFAULT_RELEVANCE = {"window": 2, "stride": 2}


def ink_mask(canvas: np.ndarray, ink_threshold: int = 64, background: int = BACKGROUND) -> np.ndarray:
    """Pixels darker than ``background - ink_threshold`` (ink), as a bool (H, W) array."""
    return np.asarray(canvas).astype(np.int32) < background - ink_threshold


def off_ink_share(
    canvas: np.ndarray,
    relevance_map: np.ndarray,
    distance: float = 2.0,
    ink_threshold: int = 64,
    background: int = BACKGROUND,
) -> float:
    """Share of positive evidence mass at pixels more than ``distance`` px (L2) from any ink pixel.

    NaN when the canvas has no ink or the map no positive evidence.
    """
    ink = ink_mask(canvas, ink_threshold, background)
    pos = np.clip(np.asarray(relevance_map, dtype=np.float64), 0, None)
    if not ink.any() or pos.sum() <= 0:
        return float("nan")
    dist = cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return float(pos[dist > distance].sum() / pos.sum())


def add_specks(
    canvas: np.ndarray,
    n_specks: int = 20,
    seed: int = 0,
    ink_threshold: int = 64,
    background: int = BACKGROUND,
) -> np.ndarray:
    """A copy with ``n_specks`` dark dots (radius 0-1, gray 0..127) on random paper pixels (seeded)."""
    rng = np.random.default_rng(seed)
    out = np.asarray(canvas, dtype=np.uint8).copy()
    ys, xs = np.nonzero(~ink_mask(canvas, ink_threshold, background))
    if len(ys) == 0:
        return out
    for k in rng.choice(len(ys), size=min(n_specks, len(ys)), replace=False):
        Dot(int(xs[k]), int(ys[k]), int(rng.integers(0, 2)), int(rng.integers(0, 128))).apply(out)
    return out


def shortcut_scores(
    model: nn.Module,
    canvases: Sequence[np.ndarray],
    texts: Sequence[str],
    charset: Charset,
    max_shift: int = 16,
    drop_from: int = 8,
    period: int = 4,
    n_specks: int = 20,
    seed: int = 0,
    relevance_probes: int = 0,
    relevance_kwargs: dict[str, Any] | None = None,
    off_ink_distance: float = 2.0,
    ink_threshold: int = 64,
    aopc: bool = False,
) -> dict[str, float]:
    """Shortcut scores of ``model`` on probe canvases (uint8 H x W) with their texts; see module doc.

    Cost: one batched forward of max_shift+1 images per probe, plus two forwards of the probe set;
    relevance maps (``relevance_probes`` > 0, parameters ``relevance_kwargs``, default 2x2
    windows with stride 2) dominate when enabled.
    """
    if len(canvases) != len(texts) or not len(texts):
        raise ValueError(f"need one text per probe canvas, got {len(canvases)} canvases and {len(texts)} texts")
    out: dict[str, float] = {}
    acc: dict[int, list[float]] = {s: [] for s in range(max_shift + 1)}
    logs: dict[int, list[float]] = {s: [] for s in range(max_shift + 1)}
    periods = []
    for canvas, text in zip(canvases, texts):
        sweep = shift_sweep(model, canvas, text, charset, max_shift)
        for s, ls, rec in zip(sweep.shifts, sweep.log_scores, sweep.texts):
            acc[int(s)].append(float(rec == text))
            logs[int(s)].append(float(ls))
        periods.append(periodicity(sweep.log_scores, period))
    mean = {k: {s: float(np.mean(v)) if v else float("nan") for s, v in d.items()} for k, d in (("acc", acc), ("logscore", logs))}
    for s in range(max_shift + 1):
        out[f"acc@shift{s}"] = mean["acc"][s]
        out[f"logscore@shift{s}"] = mean["logscore"][s]
    for k in ("acc", "logscore"):
        late = [v for s, v in mean[k].items() if s >= drop_from and np.isfinite(v)]
        out[f"{k}_drop@{drop_from}plus"] = mean[k][0] - float(np.mean(late)) if late else float("nan")
    finite = [p for p in periods if np.isfinite(p)]
    out[f"periodicity@{period}"] = float(np.mean(finite)) if finite else float("nan")

    cer = {}
    for name, images in (("clean", list(canvases)), ("specks", [add_specks(c, n_specks, seed + i, ink_threshold) for i, c in enumerate(canvases)])):
        _, recognized = score_canvases(model, np.stack(images), list(texts), charset)
        cer[name] = float(CharErrorRate()(recognized, list(texts)))
        out[f"cer@{name}"] = cer[name]
    out["cer_increase@specks"] = cer["specks"] - cer["clean"]

    if relevance_probes > 0:
        kwargs = {**DEFAULT_RELEVANCE, **(relevance_kwargs or {})}
        shares, aopcs = [], []
        for canvas, text in list(zip(canvases, texts))[:relevance_probes]:
            rel = relevance(model, canvas, text, charset, **kwargs)
            shares.append(off_ink_share(canvas, rel, off_ink_distance, ink_threshold))
            if aopc:
                aopcs.append(deletion_curve(model, canvas, text, charset, rel)[2])
        finite = [v for v in shares if np.isfinite(v)]
        out["off_ink_evidence"] = float(np.mean(finite)) if finite else float("nan")
        if aopc:
            out["aopc"] = float(np.mean(aopcs))
    return out
