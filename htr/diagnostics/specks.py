"""The background-noise probe: CER of the probe words as they are and with dark specks on the paper."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torchmetrics.text import CharErrorRate

from htr.data.augment import add_specks
from htr.diagnostics.scorer import TextScorer

N_SPECKS = 20  # dots per canvas: enough to cost a model that reads the paper, too few to hide a letter


@dataclass(frozen=True)
class SpecksCER:
    """Corpus CER (torchmetrics) of the probe words without and with specks."""

    clean: float
    specks: float

    @property
    def increase(self) -> float:
        """What the specks cost: CER with them minus CER without."""
        return self.specks - self.clean


def speckle(canvas: np.ndarray, n_specks: int = N_SPECKS, seed: int = 0) -> np.ndarray:
    """A copy with ``n_specks`` small dark dots on the paper (seeded): the noise-robustness probe.

    The same drawing as the ``noise`` augmentation (:func:`htr.data.augment.add_specks`, which
    keeps specks off the ink), with smaller, darker dots than training uses.
    """
    return add_specks(np.asarray(canvas, dtype=np.uint8), np.random.default_rng(seed), count=(n_specks, n_specks), radius=(0, 1), gray=(0, 127))


def specks_cer(scorer: TextScorer, canvases: Sequence[np.ndarray], texts: Sequence[str], n_specks: int = N_SPECKS, seed: int = 0) -> SpecksCER:
    """CER of the scorer's readings of ``canvases`` as they are and speckled (canvas ``i`` with seed ``seed + i``)."""
    if len(canvases) != len(texts) or not len(texts):
        raise ValueError(f"need one text per canvas, got {len(canvases)} canvases and {len(texts)} texts")
    cer = {}
    for name, images in (("clean", list(canvases)), ("specks", [speckle(c, n_specks, seed + i) for i, c in enumerate(canvases)])):
        readings = scorer.score(np.stack(images), list(texts)).readings
        cer[name] = float(CharErrorRate()(readings, list(texts)))
    return SpecksCER(cer["clean"], cer["specks"])
