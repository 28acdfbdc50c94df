"""One diagnostics settings object: the same defaults everywhere, configs say only what differs."""

from __future__ import annotations

import pytest

from conftest import ROOT
from htr.diagnostics.probes import ProbeError
from htr.diagnostics.settings import DiagnosticsSettings
from htr.experiment.evaluate import build_parser as evaluate_parser
from htr.experiment.study import build_parser as study_parser
from htr.train.callbacks import DiagnosticsCallback


def test_evaluate_study_and_callback_share_the_defaults() -> None:
    defaults = DiagnosticsSettings()
    assert DiagnosticsSettings.from_config(evaluate_parser().parse_args(["a.ckpt"])) == defaults
    assert DiagnosticsSettings.from_config(study_parser().parse_args([])) == defaults
    assert DiagnosticsCallback().settings == defaults


def test_the_stride_follows_the_window_unless_given() -> None:
    assert DiagnosticsSettings(relevance_window=4).stride == 4
    assert DiagnosticsSettings(relevance_window=4, relevance_stride=2).stride == 2
    # The quick study sets a window of 4: its maps must not silently slide by 1 px (16x the work).
    quick = DiagnosticsSettings.from_config(study_parser().parse_args(["--config", str(ROOT / "configs" / "study" / "study-quick.yaml")]))
    assert (quick.relevance_window, quick.stride, quick.num_probes) == (4, 4, 8)
    full = DiagnosticsSettings.from_config(study_parser().parse_args(["--config", str(ROOT / "configs" / "study" / "study.yaml")]))
    assert full.describe()["relevance"] == "2x2 windows every 2 px, first 4 probes" and full.num_probes == 64


@pytest.mark.parametrize("bad", [{"num_probes": 0}, {"relevance_window": 0}, {"relevance_stride": 0}, {"relevance_probes": -1}])
def test_impossible_settings_are_one_line_errors(bad: dict) -> None:
    with pytest.raises(ProbeError, match=next(iter(bad))):
        DiagnosticsSettings(**bad)
