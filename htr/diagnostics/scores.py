"""Shortcut scores over a probe set: one flat ``dict[str, float]``, ready to log.

Keys (S = shifts 0..max_shift, D = ``drop_from``):

* ``acc@shift{s}``, ``logscore@shift{s}``: word accuracy (best path == text) and mean log
  p(text|x) of the probes shifted right by s px (probes that have no room for s are left out
  of that shift; NaN if none has).
* ``acc_drop@{D}plus`` = acc@shift0 - mean acc over s >= D; ``logscore_drop@{D}plus`` likewise.
* ``periodicity@{period}``: mean over probes of :func:`periodicity` of the log-score curve (a
  share of its variation), ``periodic_amplitude@{period}`` of :func:`periodic_amplitude` (nats).
* ``cer@clean``, ``cer@specks``, ``cer_increase@specks``: corpus CER (torchmetrics) without and
  with seeded random dark specks on the paper.
* ``off_ink_evidence``: mean over the probes with a relevance map of the share of positive
  evidence more than ``off_ink_distance`` px from any ink pixel (only if there are maps).
* ``aopc``: mean deletion-curve AOPC over the same probes (only if there are deletion curves).

The per-probe work (sweeps, maps, curves) is done once by :func:`htr.diagnostics.probes.diagnose`;
:func:`summarize` turns it into these numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from torch import nn
from torchmetrics.text import CharErrorRate

from htr.data.augment import add_specks
from htr.data.preprocess import BACKGROUND
from htr.diagnostics.forward import score_canvases
from htr.diagnostics.shift import ShiftSweep, periodic_amplitude, periodicity
from htr.text import Charset


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


def mean_periodic_amplitude(curves: Sequence[np.ndarray], period: int = 4) -> float:
    """Mean :func:`periodic_amplitude` of log-score curves (trailing NaNs, i.e. shifts a probe
    had no room for, dropped); NaN if no curve is long enough."""
    amps = []
    for curve in curves:
        curve = np.asarray(curve, dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(curve))
        amps.append(periodic_amplitude(curve[: finite[-1] + 1], period) if len(finite) else float("nan"))
    amps = [a for a in amps if np.isfinite(a)]
    return float(np.mean(amps)) if amps else float("nan")


def speckle(canvas: np.ndarray, n_specks: int = 20, seed: int = 0) -> np.ndarray:
    """A copy with ``n_specks`` small dark dots on the paper (seeded): the noise-robustness probe.

    The same drawing as the ``noise`` augmentation (:func:`htr.data.augment.add_specks`, which
    keeps specks off the ink), with smaller, darker dots than training uses.
    """
    return add_specks(np.asarray(canvas, dtype=np.uint8), np.random.default_rng(seed), count=(n_specks, n_specks), radius=(0, 1), gray=(0, 127))


def summarize(
    model: nn.Module,
    canvases: Sequence[np.ndarray],
    texts: Sequence[str],
    charset: Charset,
    sweeps: Sequence[ShiftSweep],
    relevance_maps: Sequence[np.ndarray] = (),
    deletions: Sequence[tuple[np.ndarray, np.ndarray, float]] = (),
    drop_from: int = 8,
    period: int = 4,
    n_specks: int = 20,
    seed: int = 0,
    off_ink_distance: float = 2.0,
    ink_threshold: int = 64,
) -> dict[str, float]:
    """The flat shortcut scores (see module doc) from per-probe shift sweeps, maps and deletion curves."""
    if len(canvases) != len(texts) or not len(texts) or len(sweeps) != len(texts):
        raise ValueError(f"need one text and one shift sweep per probe canvas, got {len(canvases)} canvases, {len(texts)} texts, {len(sweeps)} sweeps")
    max_shift = max(int(s.shifts[-1]) for s in sweeps)
    out: dict[str, float] = {}
    acc: dict[int, list[float]] = {s: [] for s in range(max_shift + 1)}
    logs: dict[int, list[float]] = {s: [] for s in range(max_shift + 1)}
    for sweep, text in zip(sweeps, texts):
        for s, ls, rec in zip(sweep.shifts, sweep.log_scores, sweep.texts):
            acc[int(s)].append(float(rec == text))
            logs[int(s)].append(float(ls))
    mean = {k: {s: float(np.mean(v)) if v else float("nan") for s, v in d.items()} for k, d in (("acc", acc), ("logscore", logs))}
    for s in range(max_shift + 1):
        out[f"acc@shift{s}"] = mean["acc"][s]
        out[f"logscore@shift{s}"] = mean["logscore"][s]
    for k in ("acc", "logscore"):
        late = [v for s, v in mean[k].items() if s >= drop_from and np.isfinite(v)]
        out[f"{k}_drop@{drop_from}plus"] = mean[k][0] - float(np.mean(late)) if late else float("nan")
    periods = [p for p in (periodicity(s.log_scores, period) for s in sweeps) if np.isfinite(p)]
    out[f"periodicity@{period}"] = float(np.mean(periods)) if periods else float("nan")
    out[f"periodic_amplitude@{period}"] = mean_periodic_amplitude([s.log_scores for s in sweeps], period)

    cer = {}
    for name, images in (("clean", list(canvases)), ("specks", [speckle(c, n_specks, seed + i) for i, c in enumerate(canvases)])):
        _, recognized = score_canvases(model, np.stack(images), list(texts), charset)
        cer[name] = float(CharErrorRate()(recognized, list(texts)))
        out[f"cer@{name}"] = cer[name]
    out["cer_increase@specks"] = cer["specks"] - cer["clean"]

    if len(relevance_maps):
        shares = [off_ink_share(c, m, off_ink_distance, ink_threshold) for c, m in zip(canvases, relevance_maps)]
        finite = [v for v in shares if np.isfinite(v)]
        out["off_ink_evidence"] = float(np.mean(finite)) if finite else float("nan")
    if len(deletions):
        out["aopc"] = float(np.mean([d[2] for d in deletions]))
    return out
