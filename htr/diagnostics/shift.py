"""Translation sweep (the seed article's Fig. 5) and the periodicity of its curve (4 px for the CRNN)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from htr.data.preprocess import BACKGROUND
from htr.diagnostics.scorer import TextScorer


@dataclass
class ShiftSweep:
    """Score of one text for the canvas content shifted right by each of ``shifts`` pixels."""

    shifts: np.ndarray  # (S,) int
    scores: np.ndarray  # (S,) p(text | shifted canvas)
    log_scores: np.ndarray  # (S,)
    texts: list[str]  # best-path text per shift


def max_shift_for(canvas: np.ndarray, background: int = BACKGROUND) -> int:
    """Largest right shift that keeps every non-background column on the canvas."""
    cols = np.flatnonzero((np.asarray(canvas) != background).any(axis=0))
    width = canvas.shape[1]
    return width - 1 - int(cols[-1]) if cols.size else width - 1


def shift_right(canvas: np.ndarray, s: int, background: int = BACKGROUND) -> np.ndarray:
    """The canvas content moved right by ``s`` px, the left ``s`` columns filled with background."""
    out = np.full_like(canvas, background)
    out[:, s:] = canvas[:, : canvas.shape[1] - s]
    return out


def shift_sweep(
    scorer: TextScorer,
    canvas: np.ndarray,
    text: str,
    max_shift: int = 16,
    background: int = BACKGROUND,
) -> ShiftSweep:
    """Shift by s = 0..S px (one batched forward); S = min(max_shift, room right of the ink)."""
    canvas = np.asarray(canvas, dtype=np.uint8)
    top = min(max_shift, max_shift_for(canvas, background))
    shifts = np.arange(top + 1)
    scored = scorer.score(np.stack([shift_right(canvas, int(s), background) for s in shifts]), text)
    return ShiftSweep(shifts, np.exp(scored.log_scores), scored.log_scores, scored.readings)


def _detrended_power(curve: np.ndarray, period: int) -> tuple[np.ndarray, int] | None:
    """|rfft|^2 of the curve's first ``floor(N / period) * period`` points after removing the line
    through its per-period block means, and that length; None if too short or not finite."""
    y = np.asarray(curve, dtype=np.float64)
    n = (len(y) // period) * period
    if period < 2 or n < 2 * period or not np.isfinite(y[:n]).all():
        return None
    y = y[:n]
    t = np.arange(n)
    centres = t.reshape(-1, period).mean(axis=1)
    line = np.polyfit(centres, y.reshape(-1, period).mean(axis=1), 1)
    return np.abs(np.fft.rfft(y - np.polyval(line, t))) ** 2, n


def periodicity(curve: np.ndarray, period: int, harmonics: bool = False) -> float:
    """Share of the detrended curve's spectral power at period ``period`` (0..1; NaN if undefined).

    Exactly: keep the first ``N' = floor(N / period) * period`` points (so that frequency
    1/period falls on FFT bin ``k = N' / period``); detrend by subtracting the least-squares
    line through the per-period block means (points ``period*j .. period*j+period-1``, placed at
    their centres), so a linear trend is removed exactly and a pure period-``period`` wave is
    left untouched; take ``|rfft|^2`` and return power(bin k) / power(bins 1..N'/2). With
    ``harmonics`` the bins 2k, 3k, ... (a non-sinusoidal period-4 pattern) count too. NaN for
    fewer than two periods, a non-finite curve, or no variation left after detrending.
    A share, not a size: the tiny wiggles of a nearly flat curve can be all periodic (see
    :func:`periodic_amplitude`).
    """
    spectrum = _detrended_power(curve, period)
    if spectrum is None:
        return float("nan")
    power, n = spectrum
    scale = max(1.0, float(np.nanmax(np.abs(np.asarray(curve, dtype=np.float64)[:n]))))
    total = power[1:].sum()
    if total <= 1e-20 * scale**2 * n:
        return float("nan")
    k = n // period
    bins = np.arange(k, n // 2 + 1, k) if harmonics else np.array([k])
    return float(power[bins].sum() / total)


def periodic_amplitude(curve: np.ndarray, period: int) -> float:
    """Amplitude, in the curve's units (nats for log-scores), of its period-``period`` sinusoid
    after the same detrending as :func:`periodicity`: how far the score swings with the
    pooling phase. NaN if the curve is too short or not finite."""
    spectrum = _detrended_power(curve, period)
    if spectrum is None:
        return float("nan")
    power, n = spectrum
    k = n // period
    # A cos(2 pi k t / n) has |rfft| = A n / 2 at bin k (A n at the Nyquist bin).
    return float(np.sqrt(power[k]) * (1 if 2 * k == n else 2) / n)
