"""Every command line: a bad value or a typo'd option is one line naming it and what is allowed, exit 2."""

from __future__ import annotations

import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from htr.cli import main as train_main
from htr.data.synthetic.__main__ import main as synthetic_main
from htr.diagnostics.__main__ import main as diagnostics_main
from htr.experiment.evaluate import main as evaluate_main
from htr.experiment.study import main as study_main

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ["--config", str(ROOT / "configs" / "baseline.yaml")]


def run_in_process(main: Callable[[list[str]], int], args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, list[str]]:
    try:
        code = main(args)
    except SystemExit as stop:  # jsonargparse exits from inside the parser
        code = stop.code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


CASES = [
    (train_main, "train.py", [*BASELINE, "--trainer.max_epoch", "1"], "unknown option --trainer.max_epoch (did you mean --trainer.max_epochs?)"),
    (train_main, "train.py", [*BASELINE, "--data.augmentation", "translat"], "--data.augmentation: 'translat' is not one of none, translate, noise, translate+noise"),
    (train_main, "train.py", [*BASELINE, "--model.pooling", "avg"], "--model.pooling: 'avg' is not one of max, blur"),
    (train_main, "train.py", [*BASELINE, "--run.wandb", "offlin"], "--run.wandb: 'offlin' is not one of offline, online, disabled"),
    (train_main, "train.py", [*BASELINE, "--trainer.max_epochs", "x"], "--trainer.max_epochs: 'x' is not a valid int | None"),
    (evaluate_main, "evaluate.py", ["a.ckpt", "--num_probe", "3"], "unknown option --num_probe (did you mean --num_probes?)"),
    (evaluate_main, "evaluate.py", ["a.ckpt", "--data.source", "iamm"], "--data.source: 'iamm' is not one of synthetic, iam, folder"),
    (study_main, "study.py", ["--relevance_windows", "2"], "unknown option --relevance_windows (did you mean --relevance_window?)"),
    (study_main, "study.py", ["--num_probes", "many"], "--num_probes: 'many' is not a valid int"),
    (diagnostics_main, "python -m htr.diagnostics", ["shift", "a.ckpt", "a.png", "--text", "a", "--max_shif", "3"], "unknown option --max_shif (did you mean --max_shift?)"),
    (diagnostics_main, "python -m htr.diagnostics", ["relevance", "a.ckpt", "a.png", "--text", "a", "--weights", "flat"], "--weights: 'flat' is not one of uniform, histogram"),
    (synthetic_main, "python -m htr.data.synthetic", ["generate", "--n-train", "5"], "unknown option --n-train (did you mean --n_train?)"),
    (synthetic_main, "python -m htr.data.synthetic", ["fonts", "--heldout_fonts", "NoSuchHand"], "synthetic.heldout_fonts: font 'NoSuchHand' not found"),
]


@pytest.mark.parametrize(("main", "prog", "args", "expected"), CASES, ids=[c[3][:40] for c in CASES])
def test_bad_option_is_one_line_exit_2(main, prog: str, args: list[str], expected: str, capsys: pytest.CaptureFixture) -> None:
    code, err = run_in_process(main, args, capsys)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"{prog}: error: {expected}"), err[0]


def test_a_config_file_typo_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epoch: 1\n")
    code, err = run_in_process(train_main, [*BASELINE, "--config", str(bad)], capsys)
    assert code == 2 and err == ["train.py: error: unknown key trainer.max_epoch (did you mean trainer.max_epochs?) (see --help)"]


def test_long_options_are_not_matched_by_prefix(capsys: pytest.CaptureFixture) -> None:
    # --num_prob used to be taken as --num_probes; --max_epochs must be spelled out too.
    code, err = run_in_process(evaluate_main, ["a.ckpt", "--num_prob", "3"], capsys)
    assert code == 2 and "unknown option --num_prob " in err[0]


def test_old_hyphen_spelling_of_max_shift_still_works(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # It fails on the missing image (exit 2), not on the option.
    code, err = run_in_process(diagnostics_main, ["shift", "a.ckpt", str(tmp_path / "none.png"), "--text", "a", "--max-shift", "3"], capsys)
    assert code == 2 and "none.png" in err[0] and "option" not in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_entry_point_prints_no_traceback_or_usage(script: str) -> None:
    args = [*BASELINE, "--data.augmentation", "translat"] if script == "train.py" else ["a.ckpt", "--splits", "[test]", "--num-probes", "3"]
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "study.py", "explore.py"])
def test_entry_point_help(script: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The thin entry points run their main (in process: the fast tier's check that they import and parse)."""
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    assert stop.value.code == 0 and "usage:" in capsys.readouterr().out.lower()
