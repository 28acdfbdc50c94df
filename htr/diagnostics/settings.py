"""The diagnostics' settings: one typed object, one set of defaults, one entry to the whole suite.

The training callback (``configs/train/common.yaml``), ``evaluate.py`` and ``study.py`` all take a
:class:`DiagnosticsSettings`; their command lines and configs spell its fields the same way
(``--num_probes``, ``--relevance_window`` ...) and only say what differs from these defaults.
:meth:`DiagnosticsSettings.diagnose` runs every diagnostic of a scorer on a probe set.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from htr.data.readers import WordSample
from htr.diagnostics.faithfulness import deletion_curve
from htr.diagnostics.probes import Diagnosis, ProbeError, ProbeSet, select_probes
from htr.diagnostics.relevance import RELEVANCE_WINDOW, relevance
from htr.diagnostics.scorer import TextScorer
from htr.diagnostics.scores import shortcut_scores
from htr.diagnostics.shift import shift_sweep
from htr.diagnostics.specks import specks_cer

# What each field means, shown by every parser that offers it.
HELP = {
    "num_probes": "probe words chosen from the probe split",
    "relevance_probes": "first probes that get relevance maps and deletion curves",
    "relevance_window": "window size (px) of the relevance maps (1 = the seed's pixel maps, ~1 min per map on a CPU)",
    "relevance_stride": "window step (px); default: the window size (a smaller step costs (window/stride)^2 as much)",
    "max_shift": "shift sweep 0..max_shift px",
    "shift_threshold": "the accuracy and log-score drops compare shift 0 with the shifts >= this (px)",
    "period": "period (px) of the periodicity scores: the CNN's width down-sampling (128 -> 32 frames: 4)",
    "seed": "probe choice and noise (specks) seed",
    "probe_split": "split the probe words are chosen from",
}


@dataclass(frozen=True)
class DiagnosticsSettings:
    """What the diagnostics run on a probe set: probes, relevance maps, shift sweep, seed."""

    num_probes: int = 16
    relevance_probes: int = 4
    relevance_window: int = RELEVANCE_WINDOW
    relevance_stride: int | None = None  # None: the window size (windows side by side)
    max_shift: int = 16
    shift_threshold: int = 8
    period: int = 4
    seed: int = 0
    probe_split: str = "val"

    def __post_init__(self) -> None:
        for name in ("num_probes", "relevance_window", "max_shift", "shift_threshold", "period"):
            if getattr(self, name) < 1:
                raise ProbeError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.relevance_probes < 0 or (self.relevance_stride is not None and self.relevance_stride < 1):
            raise ProbeError(f"relevance_probes must be >= 0 and relevance_stride >= 1, got {self.relevance_probes} and {self.relevance_stride}")

    @property
    def stride(self) -> int:
        return self.relevance_stride or self.relevance_window

    def choose_probes(self, samples: Sequence[WordSample]) -> ProbeSet:
        """The seeded probe choice (the same words for the callback, evaluate.py and the study),
        left-aligned; ``ProbeSet.aligned`` places them for a model trained on centred words."""
        return ProbeSet.from_samples(select_probes(samples, self.num_probes, self.seed))

    def diagnose(self, scorer: TextScorer, probes: ProbeSet) -> Diagnosis:
        """Every diagnostic of ``scorer`` on ``probes`` (placed as the model reads words, see
        ``ProbeSet.aligned``): shift sweeps of all probes, relevance maps and deletion curves of the
        first ``relevance_probes``, the specks CER, and the shortcut scores derived from them."""
        pairs = list(zip(probes.canvases, probes.texts))
        sweeps = [shift_sweep(scorer, c, t, self.max_shift) for c, t in pairs]
        maps = [relevance(scorer, c, t, window=self.relevance_window, stride=self.stride) for c, t in pairs[: self.relevance_probes]]
        deletions = [deletion_curve(scorer, c, t, m) for (c, t), m in zip(pairs, maps)]
        specks = specks_cer(scorer, probes.canvases, probes.texts, seed=self.seed)
        scores = shortcut_scores(probes.texts, sweeps, specks, self.shift_threshold, self.period, probes.canvases, maps, deletions)
        return Diagnosis(scores, sweeps, maps, deletions)

    def describe(self) -> dict[str, str]:
        """The settings as a report shows them."""
        return {
            "relevance": f"{self.relevance_window}x{self.relevance_window} windows every {self.stride} px, first {self.relevance_probes} probes",
            "shift sweep": f"0..{self.max_shift} px",
        }

    @classmethod
    def from_config(cls, cfg: Any) -> DiagnosticsSettings:
        """The settings from a parsed namespace that has one option per field (see :func:`add_arguments`)."""
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


def add_arguments(parser: Any, skip: tuple[str, ...] = ()) -> None:
    """One ``--<field>`` option per setting, with the defaults and help above (a jsonargparse parser)."""
    types = typing.get_type_hints(DiagnosticsSettings)
    for f in dataclasses.fields(DiagnosticsSettings):
        if f.name not in skip:
            parser.add_argument(f"--{f.name}", type=types[f.name], default=f.default, help=HELP[f.name])
