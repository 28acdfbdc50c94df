"""Shortcut scores over a probe set, typed: :class:`ShortcutScores`, and its flat form for W&B and JSON.

The scores (S = shifts 0..max_shift, D = the settings' ``shift_threshold``, P = their ``period``):

* ``accuracy``, ``log_score`` per shift: word accuracy (reading == text) and mean log
  p(text|x) of the probes shifted right by s px (probes that have no room for s are left out
  of that shift; NaN if none has);
* ``accuracy_drop`` = accuracy at 0 - mean accuracy over s >= D; ``log_score_drop`` likewise;
* ``periodicity``: mean over probes of :func:`periodicity` of the log-score curve (a share of its
  variation), ``periodic_amplitude`` of :func:`periodic_amplitude` (nats), both at period P;
* ``specks``: the specks diagnostic's CER without and with dark specks on the paper
  (:func:`htr.diagnostics.specks.specks_cer`);
* ``off_ink_evidence``: mean over the probes with a relevance map of the share of positive
  evidence more than ``off_ink_distance`` px from any ink pixel (None without maps);
* ``aopc``: mean deletion-curve AOPC over the same probes (None without deletion curves).

Flat keys (:meth:`ShortcutScores.to_flat`, what runs log and results files hold): ``acc@shift{s}``,
``logscore@shift{s}``, ``acc_drop@{D}plus``, ``logscore_drop@{D}plus``, ``periodicity@{P}``,
``periodic_amplitude@{P}``, ``cer@clean``, ``cer@specks``, ``cer_increase@specks``,
``off_ink_evidence``, ``aopc``; :func:`flat_key` is the one place they are spelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from htr.data.preprocess import BACKGROUND
from htr.diagnostics.shift import ShiftSweep, periodic_amplitude, periodicity
from htr.diagnostics.specks import SpecksCER

_KEYS = {
    "accuracy": "acc@shift{shift}",
    "log_score": "logscore@shift{shift}",
    "accuracy_drop": "acc_drop@{threshold}plus",
    "log_score_drop": "logscore_drop@{threshold}plus",
    "periodicity": "periodicity@{period}",
    "periodic_amplitude": "periodic_amplitude@{period}",
    "cer_clean": "cer@clean",
    "cer_specks": "cer@specks",
    "cer_increase_specks": "cer_increase@specks",
    "off_ink_evidence": "off_ink_evidence",
    "aopc": "aopc",
}


def flat_key(name: str, shift_threshold: int, period: int, shift: int | None = None) -> str:
    """The flat key of score ``name`` (a name of :data:`_KEYS`; ``shift`` for the per-shift ones)."""
    return _KEYS[name].format(threshold=shift_threshold, period=period, shift=shift)


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


def mean_periodic_amplitude(curves: Sequence[np.ndarray], period: int) -> float:
    """Mean :func:`periodic_amplitude` of log-score curves (trailing NaNs, i.e. shifts a probe
    had no room for, dropped); NaN if no curve is long enough."""
    amps = []
    for curve in curves:
        curve = np.asarray(curve, dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(curve))
        amps.append(periodic_amplitude(curve[: finite[-1] + 1], period) if len(finite) else float("nan"))
    amps = [a for a in amps if np.isfinite(a)]
    return float(np.mean(amps)) if amps else float("nan")


@dataclass(frozen=True)
class ShortcutScores:
    """The shortcut scores of one model on one probe set (see the module doc)."""

    shift_threshold: int  # D: the drops compare shift 0 with shifts >= D
    period: int  # P: of the periodicity scores
    accuracy: tuple[float, ...]  # per shift 0, 1, ... (the largest any probe had room for)
    log_score: tuple[float, ...]
    accuracy_drop: float
    log_score_drop: float
    periodicity: float
    periodic_amplitude: float
    specks: SpecksCER
    off_ink_evidence: float | None = None  # None: no relevance maps
    aopc: float | None = None  # None: no deletion curves

    @property
    def shifts(self) -> range:
        return range(len(self.accuracy))

    def accuracy_at(self, shift: int) -> float:
        """Probe word accuracy at ``shift`` px (NaN beyond the shifts measured)."""
        return self.accuracy[shift] if 0 <= shift < len(self.accuracy) else math.nan

    @property
    def max_accuracy_drop(self) -> float:
        """The worst loss of accuracy at any shift: accuracy at 0 minus the lowest."""
        return self.accuracy[0] - min(self.accuracy)

    def key(self, name: str, shift: int | None = None) -> str:
        """The flat key of one score of these (:func:`flat_key` with their threshold and period)."""
        return flat_key(name, self.shift_threshold, self.period, shift)

    def to_flat(self) -> dict[str, float]:
        """The flat ``dict[str, float]`` runs log (``diag/<key>``) and results files hold."""
        out: dict[str, float] = {}
        for s in self.shifts:
            out[self.key("accuracy", s)] = self.accuracy[s]
            out[self.key("log_score", s)] = self.log_score[s]
        for name in ("accuracy_drop", "log_score_drop", "periodicity", "periodic_amplitude"):
            out[self.key(name)] = getattr(self, name)
        out[self.key("cer_clean")] = self.specks.clean
        out[self.key("cer_specks")] = self.specks.specks
        out[self.key("cer_increase_specks")] = self.specks.increase
        for name in ("off_ink_evidence", "aopc"):
            if getattr(self, name) is not None:
                out[self.key(name)] = getattr(self, name)
        return out

    @classmethod
    def from_flat(cls, flat: Mapping[str, float], shift_threshold: int, period: int) -> ShortcutScores:
        """The scores of a flat dict made by :meth:`to_flat` with this threshold and period (a stored
        run's ``diagnostics``); a score the file lacks (made before it existed) is NaN."""

        def key(name: str, shift: int | None = None) -> str:
            return flat_key(name, shift_threshold, period, shift)

        def get(name: str, shift: int | None = None) -> float:
            return float(flat.get(key(name, shift), math.nan))

        if key("accuracy_drop") not in flat:
            raise ValueError(f"no {key('accuracy_drop')} among the scores: made with another shift threshold?")
        shifts = range(next(s for s in range(len(flat) + 1) if key("accuracy", s) not in flat))
        optional = {n: get(n) if key(n) in flat else None for n in ("off_ink_evidence", "aopc")}
        return cls(
            shift_threshold, period, tuple(get("accuracy", s) for s in shifts), tuple(get("log_score", s) for s in shifts),
            get("accuracy_drop"), get("log_score_drop"), get("periodicity"), get("periodic_amplitude"),
            SpecksCER(get("cer_clean"), get("cer_specks")), **optional,
        )


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def shortcut_scores(
    texts: Sequence[str],
    sweeps: Sequence[ShiftSweep],
    specks: SpecksCER,
    shift_threshold: int,
    period: int,
    canvases: Sequence[np.ndarray] = (),
    relevance_maps: Sequence[np.ndarray] = (),
    deletions: Sequence[tuple[np.ndarray, np.ndarray, float]] = (),
    off_ink_distance: float = 2.0,
    ink_threshold: int = 64,
) -> ShortcutScores:
    """The scores from per-probe shift sweeps, the specks CER and the first probes' maps and deletion curves."""
    if not len(texts) or len(sweeps) != len(texts) or len(relevance_maps) > len(canvases):
        raise ValueError(f"need one shift sweep per probe text and a canvas per relevance map, got {len(texts)} texts, {len(sweeps)} sweeps, {len(canvases)} canvases, {len(relevance_maps)} maps")
    max_shift = max(int(s.shifts[-1]) for s in sweeps)
    acc: dict[int, list[float]] = {s: [] for s in range(max_shift + 1)}
    logs: dict[int, list[float]] = {s: [] for s in range(max_shift + 1)}
    for sweep, text in zip(sweeps, texts):
        for s, ls, rec in zip(sweep.shifts, sweep.log_scores, sweep.texts):
            acc[int(s)].append(float(rec == text))
            logs[int(s)].append(float(ls))
    accuracy = tuple(_mean(v) for v in acc.values())
    log_score = tuple(_mean(v) for v in logs.values())

    def drop(curve: tuple[float, ...]) -> float:
        late = [v for s, v in enumerate(curve) if s >= shift_threshold and np.isfinite(v)]
        return curve[0] - float(np.mean(late)) if late else float("nan")

    periods = [p for p in (periodicity(s.log_scores, period) for s in sweeps) if np.isfinite(p)]
    off_ink = None
    if len(relevance_maps):
        shares = [off_ink_share(c, m, off_ink_distance, ink_threshold) for c, m in zip(canvases, relevance_maps)]
        off_ink = _mean([v for v in shares if np.isfinite(v)])
    return ShortcutScores(
        shift_threshold, period, accuracy, log_score, drop(accuracy), drop(log_score), _mean(periods),
        mean_periodic_amplitude([s.log_scores for s in sweeps], period), specks, off_ink,
        float(np.mean([d[2] for d in deletions])) if len(deletions) else None,
    )
