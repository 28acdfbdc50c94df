"""Pixel relevance by prediction difference analysis (Zintgraf et al. 2017) for CTC text scores.

For each k x k window W (moved with ``stride``), the weight of evidence for ``text`` is

    WE(W) = log2 odds p(text | x) - log2 odds p(text | x without W),
    p(text | x without W) = sum_v w_v p(text | x with W := v)

where the replacements v are gray levels (``sampling="marginal"``, weighted uniformly or by
the image's gray histogram; the seed article's analysis) or patches drawn from the window's
surroundings (``sampling="conditional"``). Each pixel gets the mean WE of the windows that cover
it. Positive = evidence for the text (red in the plots), negative = against (blue).

Probabilities are smoothed as p' = eps + (1 - 2 eps) p before taking odds (a Laplace-style
correction, Zintgraf's eq. 4 with a tiny pseudo-count), so log-odds stay finite when a score is
0 or 1; differences below ~eps carry no meaning.

Any :class:`htr.diagnostics.scorer.TextScorer` gives the maps. Two exact implementations:
``naive`` runs every perturbed image through the scorer in batches (the reference, and what
every scorer can do); ``fast``, where the scorer offers it (:class:`CRNNScorer`, the project's
CRNN), runs the CNN once and recomputes only the feature columns a window can change
(:mod:`htr.diagnostics.incremental`), then the sequence head on the spliced features. Both skip
replacements that leave the image unchanged (their score is the clean score); ``fast`` also
skips the head for perturbations whose CNN features come out bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from htr.diagnostics.scorer import SupportsIncremental, TextScorer, check_text

SEED_GRAY_LEVELS = (0, 63, 127, 191, 255)
# The one default window (px) of every relevance map: relevance(), the suite (DiagnosticsSettings),
# its CLI and the explorer. 2x2 windows side by side resolve strokes at ~13 s per map on a CPU core;
# window 1 is the seed article's pixel maps (~1 min), 4 the fast preview the training callback uses.
RELEVANCE_WINDOW = 2


@dataclass
class Perturbations:
    """Windows (y0, y1, x0, x1) and, per window, S replacement patches with weights."""

    windows: np.ndarray  # (N, 4) int
    values: list[np.ndarray]  # N arrays (S, y1 - y0, x1 - x0) float gray 0..255
    weights: np.ndarray  # (N, S), rows sum to 1


def window_positions(size: int, window: int, stride: int) -> list[int]:
    """Start offsets covering 0..size-1: every ``stride``, plus the last start if not on the grid."""
    last = size - window
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def histogram_weights(canvas: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Share of the image's pixels nearest to each gray level (bin edges at the midpoints).

    With the seed's levels (0, 63, 127, 191, 255) this is its 5-bin gray histogram.
    """
    levels = np.asarray(levels, dtype=np.float64)
    order = np.argsort(levels)
    edges = (levels[order][1:] + levels[order][:-1]) / 2
    counts = np.bincount(np.searchsorted(edges, canvas.ravel(), side="right"), minlength=len(levels)).astype(np.float64)
    out = np.empty_like(counts)
    out[order] = counts
    return out / out.sum()


def marginal_levels(canvas: np.ndarray, gray_levels: Sequence[float] | None, weights: str | Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    """(levels, weights) for marginal sampling; levels with zero weight are dropped (they add nothing).

    ``gray_levels=None`` spans the image's own gray range with 5 levels.
    """
    if gray_levels is None:
        levels = np.unique(np.round(np.linspace(canvas.min(), canvas.max(), 5)))
    else:
        levels = np.asarray(gray_levels, dtype=np.float64)
    if levels.size == 0 or levels.min() < 0 or levels.max() > 255:
        raise ValueError(f"gray levels must be in 0..255, got {levels.tolist()}")
    if weights is None or (isinstance(weights, str) and weights == "uniform"):
        w = np.full(len(levels), 1.0 / len(levels))
    elif isinstance(weights, str) and weights == "histogram":
        w = histogram_weights(canvas, levels)
    elif isinstance(weights, str):
        raise ValueError(f"weights must be None, 'uniform', 'histogram' or a sequence, got {weights!r}")
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != levels.shape or (w < 0).any() or w.sum() <= 0:
            raise ValueError("explicit weights need one non-negative value per gray level")
        w = w / w.sum()
    keep = w > 0
    return levels[keep], w[keep]


def make_perturbations(
    canvas: np.ndarray,
    window: int = 1,
    stride: int = 1,
    sampling: str = "marginal",
    gray_levels: Sequence[float] | None = SEED_GRAY_LEVELS,
    weights: str | Sequence[float] | None = None,
    n_samples: int = 8,
    pad: int = 2,
    seed: int = 0,
) -> Perturbations:
    """All windows of the canvas and their replacement patches.

    ``conditional``: each of ``n_samples`` patches fills the window with pixels drawn (with
    replacement, seeded) from the ring of width ``pad`` around it, clipped to the canvas.
    """
    h, w = canvas.shape
    if not (1 <= window <= min(h, w)) or stride < 1:
        raise ValueError(f"window must be in 1..{min(h, w)} and stride >= 1, got {window}, {stride}")
    windows = np.array(
        [(y, y + window, x, x + window) for x in window_positions(w, window, stride) for y in window_positions(h, window, stride)],
        dtype=np.int64,
    )
    values: list[np.ndarray] = []
    if sampling == "marginal":
        levels, lw = marginal_levels(canvas, gray_levels, weights)
        patches = np.broadcast_to(levels[:, None, None], (len(levels), window, window)).astype(np.float64)
        values = [patches] * len(windows)
        all_w = np.broadcast_to(lw, (len(windows), len(lw))).copy()
    elif sampling == "conditional":
        if n_samples < 1 or pad < 1:
            raise ValueError("conditional sampling needs n_samples >= 1 and pad >= 1")
        rng = np.random.default_rng(seed)
        gray = canvas.astype(np.float64)
        for y0, y1, x0, x1 in windows:
            ya, yb, xa, xb = max(0, y0 - pad), min(h, y1 + pad), max(0, x0 - pad), min(w, x1 + pad)
            ring = np.ones((yb - ya, xb - xa), dtype=bool)
            ring[y0 - ya : y1 - ya, x0 - xa : x1 - xa] = False
            pool = gray[ya:yb, xa:xb][ring]
            values.append(rng.choice(pool, size=(n_samples, window, window), replace=True))
        all_w = np.full((len(windows), n_samples), 1.0 / n_samples)
    else:
        raise ValueError(f"sampling must be 'marginal' or 'conditional', got {sampling!r}")
    return Perturbations(windows, values, all_w)


def changing_jobs(gray: np.ndarray, pert: Perturbations) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Jobs (window index, sample index) whose patch changes the image, grouped by window columns.

    Replacements equal to the window's own pixels are not run: their score is the clean one.
    """
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i, (y0, y1, x0, x1) in enumerate(pert.windows):
        orig = gray[y0:y1, x0:x1]
        for j, patch in enumerate(pert.values[i]):
            if not np.array_equal(patch, orig):
                groups.setdefault((int(x0), int(x1)), []).append((i, j))
    return groups


def perturbation_log_scores(
    scorer: TextScorer,
    canvas: np.ndarray,
    text: str,
    perturbations: Perturbations,
    method: str = "fast",
    batch_size: int = 512,
) -> tuple[float, np.ndarray]:
    """(clean log score, log scores (N, S) of every window x replacement).

    ``fast`` uses the scorer's incremental engine where it offers one (:class:`CRNNScorer` on a
    supported CNN) and the ``naive`` batches otherwise; both give the same scores.
    """
    if method not in ("fast", "naive"):
        raise ValueError(f"method must be 'fast' or 'naive', got {method!r}")
    check_text(text, scorer.charset)
    gray = canvas.astype(np.float32)
    pert = perturbations
    out = np.empty(pert.weights.shape, dtype=np.float64)
    groups = changing_jobs(gray, pert)
    fast = method == "fast" and isinstance(scorer, SupportsIncremental)
    with scorer.incremental(gray, text, batch_size) if fast else nullcontext() as engine:
        if engine is not None:
            out[:] = engine.clean_log_score
            for (x0, x1), jobs in groups.items():
                for k in range(0, len(jobs), batch_size):
                    chunk = jobs[k : k + batch_size]
                    engine.add(_patched(gray[:, x0:x1], pert, chunk, x0), x0, x1, chunk)
            engine.flush()
            for keys, scores in engine.done:
                out[tuple(np.array(keys).T)] = scores
            return engine.clean_log_score, out
    clean = float(scorer.score(gray, text, decode=False).log_scores[0])
    out[:] = clean
    jobs = [job for group in groups.values() for job in group]
    for k in range(0, len(jobs), batch_size):
        chunk = jobs[k : k + batch_size]
        out[tuple(np.array(chunk).T)] = scorer.score(_patched(gray, pert, chunk, 0), text, decode=False, batch_size=batch_size).log_scores
    return clean, out


def _patched(gray: np.ndarray, pert: Perturbations, jobs: list[tuple[int, int]], col0: int) -> np.ndarray:
    """Copies of ``gray`` (whose first column is canvas column ``col0``), one per job, patched."""
    out = np.repeat(gray[None], len(jobs), axis=0)
    for n, (i, j) in enumerate(jobs):
        y0, y1, x0, x1 = pert.windows[i]
        out[n, y0:y1, x0 - col0 : x1 - col0] = pert.values[i][j]
    return out


def log2_odds(log_p: np.ndarray | float, eps: float = 1e-6) -> np.ndarray:
    """log2(p' / (1 - p')) with p' = eps + (1 - 2 eps) p, from natural-log probabilities."""
    p = eps + (1 - 2 * eps) * np.exp(np.asarray(log_p, dtype=np.float64))
    return np.log2(p) - np.log2(1 - p)


def weight_of_evidence(clean_log_score: float, log_scores: np.ndarray, weights: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """WE per window: log2 odds of the clean score minus log2 odds of the weighted mean score."""
    with np.errstate(divide="ignore"):
        p_without = np.sum(weights * np.exp(log_scores), axis=1)
        return log2_odds(clean_log_score, eps) - log2_odds(np.log(p_without), eps)


def windows_to_pixels(values: np.ndarray, windows: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel mean of the values of the windows covering each pixel."""
    total = np.zeros(shape, dtype=np.float64)
    count = np.zeros(shape, dtype=np.float64)
    for v, (y0, y1, x0, x1) in zip(values, windows):
        total[y0:y1, x0:x1] += v
        count[y0:y1, x0:x1] += 1
    return total / np.maximum(count, 1)


def relevance(
    scorer: TextScorer,
    canvas: np.ndarray,
    text: str,
    window: int = RELEVANCE_WINDOW,
    stride: int | None = None,
    sampling: str = "marginal",
    gray_levels: Sequence[float] | None = SEED_GRAY_LEVELS,
    weights: str | Sequence[float] | None = None,
    n_samples: int = 8,
    pad: int = 2,
    seed: int = 0,
    method: str = "fast",
    batch_size: int = 512,
    eps: float = 1e-6,
) -> np.ndarray:
    """Weight of evidence (log2 odds units) for ``text`` per pixel of a uint8 canvas, (H, W) float64.

    ``window`` x ``window`` windows every ``stride`` px (default: side by side); ``window=1`` is the
    seed article's pixel map. Gray levels {0, 63, 127, 191, 255} weighted uniformly as in the seed
    (``weights="histogram"`` for the image's 5-bin histogram). ``sampling="conditional"``
    draws ``n_samples`` replacement patches from the ``pad``-pixel ring around each window
    (seeded). ``method="fast"`` and ``"naive"`` give the same map (see module docstring);
    ``fast`` falls back to ``naive`` for scorers without an incremental engine.
    """
    canvas = np.asarray(canvas)
    if canvas.ndim != 2:
        raise ValueError(f"expected a 2-D gray canvas, got shape {canvas.shape}")
    pert = make_perturbations(canvas, window, window if stride is None else stride, sampling, gray_levels, weights, n_samples, pad, seed)
    clean, scores = perturbation_log_scores(scorer, canvas, text, pert, method, batch_size)
    we = weight_of_evidence(clean, scores, pert.weights, eps)
    return windows_to_pixels(we, pert.windows, canvas.shape)
