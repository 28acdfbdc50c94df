"""Shared plumbing: run a model on uint8 canvases and score a text (no decoding of our own).

Every diagnostic goes through :func:`score_canvases`, which uses the project's one
preprocessing step (:func:`htr.data.preprocess.normalize`), the CTC text score
(:func:`htr.text.text_log_score`) and best-path decoding (:func:`htr.text.best_path_decode`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from htr.data.preprocess import normalize
from htr.text import Charset, best_path_decode, text_log_score


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode under ``torch.inference_mode`` and restore its mode afterwards.

    Diagnostics may run from a training callback; BatchNorm must use its running statistics.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


def check_text(text: str, charset: Charset) -> None:
    """Raise ``ValueError`` naming the characters of ``text`` the charset lacks."""
    bad = charset.unknown(text)
    if bad:
        raise ValueError(f"text {text!r} has characters outside the model's charset: {bad!r}")


def log_scores_of(log_probs: torch.Tensor, texts: Sequence[str], charset: Charset) -> np.ndarray:
    """float64 log p(text | image) per row of (B, T, C) log-probs (``-inf`` where infeasible)."""
    return text_log_score(log_probs, list(texts), charset).double().cpu().numpy()


def score_canvases(
    model: nn.Module,
    canvases: np.ndarray | Sequence[np.ndarray],
    texts: str | Sequence[str],
    charset: Charset,
    batch_size: int = 256,
    decode: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Log-score of ``texts`` and best-path text for each gray canvas (B, H, W) in 0..255.

    ``texts`` is one text for all canvases or one per canvas. Returns (log_scores float64 (B,),
    recognised texts); the texts list is empty when ``decode`` is False.
    """
    canvases = np.asarray(canvases)
    if canvases.ndim == 2:
        canvases = canvases[None]
    n = len(canvases)
    texts = [texts] * n if isinstance(texts, str) else list(texts)
    if len(texts) != n:
        raise ValueError(f"{len(texts)} texts for {n} canvases")
    for t in set(texts):
        check_text(t, charset)
    device = model_device(model)
    scores: list[np.ndarray] = []
    decoded: list[str] = []
    with eval_mode(model):
        for i in range(0, n, batch_size):
            x = normalize(canvases[i : i + batch_size]).to(device)
            log_probs = model(x)
            scores.append(log_scores_of(log_probs, texts[i : i + batch_size], charset))
            if decode:
                decoded.extend(best_path_decode(log_probs, charset))
    return np.concatenate(scores) if scores else np.zeros(0), decoded
