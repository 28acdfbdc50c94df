"""Figures of the diagnostics (matplotlib ``Figure`` objects, no pyplot state, Agg-renderable).

Save with ``fig.savefig(path)``; log with e.g. ``wandb.Image(fig)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from htr.diagnostics.edits import EditResult
from htr.diagnostics.shift import ShiftSweep

SEED_VMAX = 0.25  # the seed article's colour range for the weight of evidence


def _vmax(relevance_map: np.ndarray, vmax: float | str | None) -> float:
    if vmax is None or vmax == "auto":
        v = float(np.nanmax(np.abs(relevance_map))) if np.size(relevance_map) else 0.0
        return v if v > 0 else 1.0
    return float(vmax)


def plot_relevance(
    canvas: np.ndarray,
    relevance_map: np.ndarray,
    text: str | None = None,
    vmax: float | str | None = SEED_VMAX,
    alpha: float = 0.6,
) -> Figure:
    """Fig. 2 of the seed: image on top; relevance (``bwr``, -vmax..vmax) blended over it below.

    Red = evidence for the text, blue = against. ``vmax="auto"`` uses the map's largest |value|.
    """
    v = _vmax(relevance_map, vmax)
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    top.imshow(canvas, cmap="gray", vmin=0, vmax=255)
    top.set_title(f"input{f' ({text!r})' if text is not None else ''}")
    bottom.imshow(canvas, cmap="gray", vmin=0, vmax=255)
    im = bottom.imshow(relevance_map, cmap="bwr", vmin=-v, vmax=v, alpha=alpha)
    bottom.set_title("weight of evidence (red: for, blue: against)")
    for ax in (top, bottom):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=bottom, orientation="horizontal", fraction=0.08, label="log2 odds")
    return fig


def plot_edits(results: Sequence[EditResult], text: str | None = None) -> Figure:
    """Fig. 3 of the seed: each (edited) image with its score and recognised text under it."""
    n = len(results)
    fig = Figure(figsize=(4, 1.3 * max(n, 1)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(max(n, 1), 1))
    for ax, r in zip(axes, results):
        ax.imshow(r.canvas, cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(r.label, fontsize=8)
        ax.set_xlabel(f"score {r.score:.3g}   recognised {r.recognized!r}", fontsize=9)
    if text is not None:
        fig.suptitle(f"score of {text!r}")
    return fig


def plot_shift(sweep: ShiftSweep, text: str | None = None) -> Figure:
    """Fig. 5 of the seed: score against right shift; x ticks read ``shift / recognised text``."""
    fig = Figure(figsize=(max(4.0, 0.45 * len(sweep.shifts) + 1), 3.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(sweep.shifts, sweep.scores, marker="o")
    ax.set_xticks(sweep.shifts)
    ax.set_xticklabels([f"{s} / {t}" for s, t in zip(sweep.shifts, sweep.texts)], rotation=90, fontsize=8)
    ax.set_xlabel("shift (px) / recognised text")
    ax.set_ylabel(f"score of {text!r}" if text is not None else "score")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    return fig


def plot_deletion(fractions: np.ndarray, scores: np.ndarray, aopc: float | None = None, label: str | None = None) -> Figure:
    """Deletion curve: score against the fraction of most-relevant pixels replaced."""
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ax.plot(np.asarray(fractions) * 100, scores, marker=".", label=label)
    ax.set_xscale("symlog", linthresh=0.1)  # the first pixels (fine steps) get room
    ax.set_xlabel("pixels replaced, most relevant first (%, log scale)")
    ax.set_ylabel("score")
    if aopc is not None:
        ax.set_title(f"AOPC = {aopc:.3g}")
    if label is not None:
        ax.legend()
    ax.grid(alpha=0.3)
    return fig
