"""Diagnostics: pure functions of (scorer, preprocessed canvas, text) -> arrays / figures.

Canvases are uint8 gray arrays (32 x 128, word on BACKGROUND=255) as made by
:func:`htr.data.preprocess.to_canvas`. Every diagnostic sees the recognizer through a
:class:`TextScorer` (canvases + texts -> log p(text | image), readings, per-frame log-probs):
:class:`CRNNScorer` for the project's CRNN, :class:`CTCScorer` and :class:`Seq2SeqScorer` for
other recognizers (docs/OWN_MODEL.md). :meth:`DiagnosticsSettings.diagnose` runs them all.
"""

from htr.diagnostics.edits import Edit, EditResult, EditSpecError, edit, parse_edit
from htr.diagnostics.faithfulness import deletion_curve
from htr.diagnostics.incremental import IncrementalCNN, supports_incremental
from htr.diagnostics.plots import plot_deletion, plot_edits, plot_relevance, plot_shift
from htr.diagnostics.probes import Diagnosis, ProbeSet, select_probes
from htr.diagnostics.relevance import SEED_GRAY_LEVELS, relevance
from htr.diagnostics.scorer import CRNNScorer, CTCScorer, Scored, ScorerError, Seq2SeqScorer, TextScorer
from htr.diagnostics.scores import ShortcutScores, off_ink_share, shortcut_scores
from htr.diagnostics.settings import DiagnosticsSettings
from htr.diagnostics.shift import ShiftSweep, periodic_amplitude, periodicity, shift_sweep
from htr.diagnostics.specks import SpecksCER, speckle, specks_cer

__all__ = [
    "CRNNScorer",
    "CTCScorer",
    "Diagnosis",
    "DiagnosticsSettings",
    "Edit",
    "EditResult",
    "EditSpecError",
    "IncrementalCNN",
    "ProbeSet",
    "SEED_GRAY_LEVELS",
    "Scored",
    "ScorerError",
    "Seq2SeqScorer",
    "ShiftSweep",
    "ShortcutScores",
    "SpecksCER",
    "TextScorer",
    "deletion_curve",
    "edit",
    "off_ink_share",
    "parse_edit",
    "periodic_amplitude",
    "periodicity",
    "plot_deletion",
    "plot_edits",
    "plot_relevance",
    "plot_shift",
    "relevance",
    "select_probes",
    "shift_sweep",
    "shortcut_scores",
    "speckle",
    "specks_cer",
    "supports_incremental",
]
