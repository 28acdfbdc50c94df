"""Deletion curve and AOPC (Samek et al. 2017): does removing the most relevant pixels hurt most?"""

from __future__ import annotations

import numpy as np

from htr.data.preprocess import BACKGROUND
from htr.diagnostics.scorer import TextScorer

MID_GRAY = 127  # the mean of the seed's gray levels (0, 63, 127, 191, 255), rounded down


def deletion_curve(
    scorer: TextScorer,
    canvas: np.ndarray,
    text: str,
    relevance_map: np.ndarray,
    steps: int = 20,
    max_fraction: float = 0.2,
    replacement: int | str = MID_GRAY,
    fine_start: bool = True,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Score of ``text`` as the most positive-evidence pixels are replaced, step by step.

    Pixels are ordered by decreasing relevance (ties: row-major order); step ``i`` of
    ``0..steps`` replaces the top ``round(i / steps * max_fraction * H * W)`` pixels by
    ``replacement`` (default mid gray 127, the mean of the marginal levels, so that both ink
    and paper pixels are really changed; ``"background"`` = 255 erases ink only). One batched
    forward. With ``fine_start`` the curve also has 1, 2, 4, ... pixels before the first even
    step (a faithful map's score often collapses within the first 1 % = 41 pixels, which even
    steps cannot show). Returns (fractions, scores p(text|x), AOPC), sorted by fraction, with
    AOPC = mean over the even steps i = 0..steps of (score_0 - score_i), Samek et al.'s area over
    the perturbation curve (the fine steps do not change it): larger = the map found pixels
    whose removal hurts the score.
    """
    canvas = np.asarray(canvas, dtype=np.uint8)
    rel = np.asarray(relevance_map, dtype=np.float64)
    if rel.shape != canvas.shape:
        raise ValueError(f"relevance map {rel.shape} does not match canvas {canvas.shape}")
    if steps < 1 or not 0 < max_fraction <= 1:
        raise ValueError("steps must be >= 1 and max_fraction in (0, 1]")
    value = BACKGROUND if replacement == "background" else int(replacement)
    if not 0 <= value <= 255:
        raise ValueError(f"replacement must be 'background' or a gray level 0..255, got {replacement!r}")
    order = np.argsort(-rel.ravel(), kind="stable")
    even = np.round(np.linspace(0.0, max_fraction, steps + 1) * canvas.size).astype(int)
    fine = 2 ** np.arange(int(np.log2(max(even[1], 1))) + 1) if fine_start else np.array([], int)
    counts = np.unique(np.concatenate([even, fine[fine < even[1]]]))
    fractions = counts / canvas.size
    images = []
    for c in counts:
        flat = canvas.ravel().copy()
        flat[order[:c]] = value
        images.append(flat.reshape(canvas.shape))
    scores = np.exp(scorer.score(np.stack(images), text, decode=False).log_scores)
    aopc = float(np.mean(scores[0] - scores[np.isin(counts, even)]))
    return fractions, scores, aopc
