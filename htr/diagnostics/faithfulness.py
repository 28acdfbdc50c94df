"""Deletion curve and AOPC (Samek et al. 2017): does removing the most relevant pixels hurt most?"""

from __future__ import annotations

import numpy as np
from torch import nn

from htr.data.preprocess import BACKGROUND
from htr.diagnostics.forward import score_canvases
from htr.text import Charset

MID_GRAY = 127  # the mean of the seed's gray levels (0, 63, 127, 191, 255), rounded down


def deletion_curve(
    model: nn.Module,
    canvas: np.ndarray,
    text: str,
    charset: Charset,
    relevance_map: np.ndarray,
    steps: int = 20,
    max_fraction: float = 0.2,
    replacement: int | str = MID_GRAY,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Score of ``text`` as the most positive-evidence pixels are replaced, step by step.

    Pixels are ordered by decreasing relevance (ties: row-major order); step ``i`` of
    ``0..steps`` replaces the top ``round(i / steps * max_fraction * H * W)`` pixels by
    ``replacement`` (default mid gray 127, the mean of the marginal levels, so that both ink
    and paper pixels are really changed; ``"background"`` = 255 erases ink only). One batched
    forward. Returns (fractions (steps+1,), scores p(text|x) (steps+1,), AOPC), with
    AOPC = mean over i of (score_0 - score_i), Samek et al.'s area over the perturbation curve:
    larger = the map found pixels whose removal hurts the score.
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
    fractions = np.linspace(0.0, max_fraction, steps + 1)
    counts = np.round(fractions * canvas.size).astype(int)
    images = []
    for c in counts:
        flat = canvas.ravel().copy()
        flat[order[:c]] = value
        images.append(flat.reshape(canvas.shape))
    log_scores, _ = score_canvases(model, np.stack(images), text, charset, decode=False)
    scores = np.exp(log_scores)
    aopc = float(np.mean(scores[0] - scores))
    return fractions, scores, aopc
