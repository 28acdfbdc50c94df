"""Diagnostics: pure functions of (model, preprocessed canvas, text) -> arrays / figures.

Canvases are uint8 gray arrays (32 x 128, word on BACKGROUND=255) as made by
:func:`htr.data.preprocess.to_canvas`; models map (B, 1, 32, 128) to (B, 32, C) log-probs.
"""

from htr.diagnostics.edits import Edit, EditResult, EditSpecError, edit, parse_edit
from htr.diagnostics.faithfulness import deletion_curve
from htr.diagnostics.forward import score_canvases
from htr.diagnostics.incremental import IncrementalCNN, supports_incremental
from htr.diagnostics.plots import plot_deletion, plot_edits, plot_relevance, plot_shift
from htr.diagnostics.probes import Diagnosis, ProbeSet, diagnose, select_probes, shortcut_scores
from htr.diagnostics.relevance import SEED_GRAY_LEVELS, relevance
from htr.diagnostics.scores import off_ink_share, speckle, summarize
from htr.diagnostics.settings import DiagnosticsSettings
from htr.diagnostics.shift import ShiftSweep, periodic_amplitude, periodicity, shift_sweep

__all__ = [
    "Diagnosis",
    "DiagnosticsSettings",
    "ProbeSet",
    "diagnose",
    "select_probes",
    "speckle",
    "SEED_GRAY_LEVELS",
    "Edit",
    "EditResult",
    "EditSpecError",
    "IncrementalCNN",
    "ShiftSweep",
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
    "score_canvases",
    "shift_sweep",
    "shortcut_scores",
    "summarize",
    "supports_incremental",
]
