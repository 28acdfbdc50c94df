"""The study end to end on a tiny folder dataset: train arms x seeds, evaluate, report, resume."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import CHEAP_DIAGNOSTICS, TINY_MODEL, WORDS, write_folder_dataset
from htr.data.readers import DatasetError
from htr.diagnostics.settings import DiagnosticsSettings
from htr.errors import ConfigError
from htr.experiment.study import StudyError, main
from htr.experiment.study_report import load_run, run_groups

ROOT = Path(__file__).resolve().parent.parent


def study_args(tmp_path: Path, data: dict) -> list[str]:
    train_args = [  # one epoch of 3 steps
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1", "--trainer.enable_model_summary", "false",
        "--data.num_workers", "0", "--run.wandb", "disabled", *CHEAP_DIAGNOSTICS, *TINY_MODEL,
    ]
    return [
        "--arms", json.dumps({"baseline": str(ROOT / "configs" / "train" / "baseline.yaml"), "blurpool": str(ROOT / "configs" / "train" / "blurpool.yaml")}),
        "--seeds", "[0, 1]",
        "--train_args", json.dumps(train_args),
        "--data", json.dumps(data),
        "--run_dir", str(tmp_path / "runs"),
        "--results", str(tmp_path / "results"),
        "--splits", "[test]",
        "--num_probes", "4",
        "--relevance_probes", "1",
        "--relevance_window", "8",
        "--relevance_stride", "8",
    ]


@pytest.mark.slow
def test_study_trains_every_arm_and_seed_and_the_budget_check_reports_and_resumes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    words = write_folder_dataset(tmp_path / "words", WORDS)
    args = [*study_args(tmp_path, {"source": "folder", "root": str(words), "batch_size": 8}), "--budget_check", "{epochs: 2, arms: [blurpool], seeds: [0]}"]
    assert main(args) == 0

    results = tmp_path / "results"
    runs = {name: json.loads((results / "runs" / f"{name}.json").read_text()) for name in ("baseline-s0", "baseline-s1", "blurpool-s0", "blurpool-s1")}
    # Each arm's config reached training, and the seeds gave different models.
    assert [runs[n]["hparams"]["pooling"] for n in sorted(runs)] == ["max", "max", "blur", "blur"]
    assert runs["baseline-s0"]["test"]["loss"] != runs["baseline-s1"]["test"]["loss"]
    for name, run in runs.items():
        assert run["test"]["n"] == len(WORDS) * 2, name
        assert {"test+noise", "diagnostics", "probes"} <= set(run), name
        npz = np.load(results / "runs" / f"{name}.npz")
        assert npz["relevance"].shape == (1, 32, 128) and npz["shift_scores"].shape == (4, 17)

    study = json.loads((results / "study.json").read_text())
    mean, sd, n = study["blurpool"]["test/cer"]
    cers = [runs[f"blurpool-s{s}"]["test"]["cer"] for s in (0, 1)]
    assert n == 2 and math.isclose(mean, np.mean(cers), rel_tol=1e-6) and math.isclose(sd, np.std(cers, ddof=1), rel_tol=1e-6, abs_tol=1e-12)
    report = (results / "README.md").read_text()
    assert "| baseline (2) |" in report and "| blurpool (2) |" in report
    assert "periodicity share @4 px drops with blurpool" in report and "4-px swing of the log-score (nats) drops with blurpool" in report
    assert "| blurpool-s1 |" in report and all("periodic_amplitude@4" in run["diagnostics"] for run in runs.values())
    assert (results / "shift_curves.png").stat().st_size > 0 and (results / "relevance_maps.png").stat().st_size > 0

    # The budget check's run trained twice the epochs (not in the means), and the report applies the rule
    # to the pair: CER within 0.3 points, each shortcut score within the sd of the arm's 2 seeds.
    longer = json.loads((results / "runs" / "blurpool-s0-e2.json").read_text())
    assert longer["training"]["epochs_run"] == 2 and runs["blurpool-s0"]["training"]["epochs_run"] == 1 and n == 2
    rows = {name: load_run(results / "runs" / f"{name}.json", ["test"], "test", DiagnosticsSettings())[0] for name in ("blurpool-s0", "blurpool-s1", "blurpool-s0-e2")}
    outside = abs(rows["blurpool-s0-e2"]["test/cer"] - rows["blurpool-s0"]["test/cer"]) > 0.003
    unknown = False
    for key in run_groups(DiagnosticsSettings())["shortcuts"]:
        sd = np.std([rows[f"blurpool-s{s}"][key] for s in (0, 1)], ddof=1)
        change = rows["blurpool-s0-e2"][key] - rows["blurpool-s0"][key]
        unknown |= not (math.isfinite(sd) and math.isfinite(change))  # an untrained map may have no positive evidence: NaN
        outside |= math.isfinite(sd) and math.isfinite(change) and abs(change) > sd * (1 + 1e-9)
    verdict = "1 epochs do NOT suffice" if outside else ("cannot tell" if unknown else "1 epochs suffice")
    assert f"| blurpool | blurpool-s0 (1 epochs) vs blurpool-s0-e2 (2 epochs) | {verdict} |" in report
    assert "| baseline | – | not run yet |" not in report  # only the arms of budget_check
    assert (results / "val_cer.png").stat().st_size > 0

    # Rerun: finished runs are skipped; a run whose results were removed is evaluated again.
    (results / "runs" / "blurpool-s1.json").unlink()
    kept = (results / "runs" / "baseline-s0.json").stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="htr.study"):
        assert main(args) == 0
    assert "baseline-s0: results exist; skipped" in caplog.text and "blurpool-s0-e2: results exist; skipped" in caplog.text and "blurpool-s1: done" in caplog.text
    assert (results / "runs" / "baseline-s0.json").stat().st_mtime_ns == kept
    assert json.loads((results / "runs" / "blurpool-s1.json").read_text())["test"]["cer"] == runs["blurpool-s1"]["test"]["cer"]


@pytest.mark.slow
def test_study_reports_a_failed_run_in_one_line(tmp_path: Path) -> None:
    words = write_folder_dataset(tmp_path / "words", WORDS)
    args = [*study_args(tmp_path, {"source": "folder", "root": str(words)}), "--train_args", '["--model.lr", "fast"]']
    with pytest.raises(StudyError, match="training baseline-s0 failed.*rerun") as failed:
        main(args)
    assert failed.value.exit_code == 1  # a failed run, not bad input (2)
    assert not (tmp_path / "results" / "runs" / "baseline-s0.json").exists()


def test_study_checks_the_data_before_any_run(tmp_path: Path) -> None:
    args = study_args(tmp_path, {"source": "folder", "root": str(tmp_path / "no-such-data")})
    with pytest.raises(DatasetError, match="no-such-data: dataset folder not found"):
        main(args)
    assert not (tmp_path / "runs").exists()


def test_study_names_a_missing_arm_config(tmp_path: Path) -> None:
    args = [*study_args(tmp_path, {"source": "folder", "root": str(tmp_path)}), "--arms", '{"baseline": "configs/train/nope.yaml"}']
    with pytest.raises(ConfigError, match=r"--arms: arm config not found \(baseline: configs/train/nope.yaml\)"):
        main(args)


@pytest.mark.slow
def test_parallel_study_with_the_centred_arm_and_an_extra_set(tmp_path: Path) -> None:
    words = write_folder_dataset(tmp_path / "words", WORDS)
    real = write_folder_dataset(tmp_path / "real", WORDS[:5], per_word=1, splits=("flat",)) / "flat"  # one labels.tsv: split "all"
    args = [
        *study_args(tmp_path, {"source": "folder", "root": str(words), "batch_size": 8, "cache_crops": True}),
        "--arms", json.dumps({"baseline": str(ROOT / "configs" / "train" / "baseline.yaml"), "centred": str(ROOT / "configs" / "train" / "centred.yaml")}),
        "--seeds", "[0]", "--parallel", "2",
        "--extra_sets", json.dumps({"real_words": {"data": {"source": "folder", "root": str(real)}, "split": "all"}}),
    ]
    assert main(args) == 0
    results = tmp_path / "results" / "runs"
    runs = {n: json.loads((results / f"{n}-s0.json").read_text()) for n in ("baseline", "centred")}
    assert runs["baseline"]["hparams"]["align"] == "left" and runs["centred"]["hparams"]["align"] == "centre"
    for name, run in runs.items():
        assert (tmp_path / "runs" / f"{name}-s0.log").is_file()  # each run's own log
        assert run["real_words"]["n"] == 5 and 0 <= run["real_words"]["read"] <= 5
        training = run["training"]
        assert training["epochs_run"] == len(training["val_cer_history"]) and training["wall_time_s"] > 0
        assert training["precision"] == "32-true" and "still_falling" not in training  # no 10 %-rule flag any more
    assert list((words / ".crops").glob("*.index.npy"))  # the data's crop cache, made once for both runs
    assert (tmp_path / "results" / "README.md").is_file()


@pytest.mark.slow
def test_a_run_trained_elsewhere_is_evaluated_not_retrained_and_must_match_the_recipe(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    words = write_folder_dataset(tmp_path / "words", WORDS)
    args = [*study_args(tmp_path, {"source": "folder", "root": str(words), "batch_size": 8}), "--seeds", "[0]", "--report", "false"]
    assert main([*args, "--only", "[baseline-s0]"]) == 0
    first = json.loads((tmp_path / "results" / "runs" / "baseline-s0.json").read_text())
    record = tmp_path / "runs" / "baseline-s0" / "metrics.json"
    trained = {"checkpoint": first["checkpoint"], "training": str(record)}

    # A second study (own results and run folders) takes that training as its baseline-s0: evaluated, not trained.
    other = [*args, "--run_dir", str(tmp_path / "runs-2"), "--results", str(tmp_path / "results-2"), "--only", "[baseline-s0]"]
    with caplog.at_level(logging.INFO, logger="htr.study"):
        assert main([*other, "--trained", json.dumps({"baseline-s0": trained})]) == 0
    assert "baseline-s0: trained outside the study" in caplog.text and not (tmp_path / "runs-2" / "baseline-s0").exists()
    second = json.loads((tmp_path / "results-2" / "runs" / "baseline-s0.json").read_text())
    assert second["checkpoint"] == first["checkpoint"] and second["test"] == first["test"]
    assert second["training"]["val_cer_history"] == json.loads(record.read_text())["val_cer_history"] == first["training"]["val_cer_history"]

    # Not that run's recipe (another arm's model, another seed, a missing record): one line, before anything runs.
    for name, spec, expected in [
        ("blurpool-s0", trained, r"trained\.blurpool-s0: .* was not trained as this run \(model\.pooling: 'max', the run's 'blur'; arm: 'baseline', the run's 'blurpool'\)"),
        ("baseline-s1", trained, r"trained\.baseline-s1: .*\(data\.seed: 0, the run's 1; seed: 0, the run's 1\); drop it from trained:"),
        ("baseline-s0", {**trained, "training": str(tmp_path / "nope.json")}, r"trained\.baseline-s0\.training: .*nope\.json not found"),
        ("noise-s0", trained, r"trained\.noise-s0: not a run of this study"),
    ]:
        with pytest.raises(ConfigError, match=expected):
            main([*other, "--seeds", "[0, 1]", "--trained", json.dumps({name: spec})])
    assert not (tmp_path / "runs-2" / "baseline-s1").exists()
    # The study's epochs set the recipe runs' budget over the arm configs': a 1-epoch training is not a 2-epoch run,
    # and is that run again where the study pins the recipe it was trained at.
    with pytest.raises(ConfigError, match=r"trained\.baseline-s0: .*\(epochs: 1, the run's 2\)"):
        main([*other, "--epochs", "2", "--trained", json.dumps({"baseline-s0": trained})])
    assert main([*other, "--epochs", "1", "--results", str(tmp_path / "results-3"), "--trained", json.dumps({"baseline-s0": trained})]) == 0


def test_study_refuses_a_budget_check_no_longer_than_its_recipe(tmp_path: Path) -> None:
    args = [*study_args(tmp_path, {"source": "folder", "root": str(tmp_path)}), "--epochs", "16", "--budget_check", json.dumps({"epochs": 16, "arms": ["baseline"]})]
    with pytest.raises(ConfigError, match=r"budget_check\.epochs: 16: not more than the recipe's 16 epochs \(epochs:\); .* e\.g\. 32"):
        main(args)
    assert not (tmp_path / "runs").exists()


def test_study_names_a_budget_check_spread_folder_without_results(tmp_path: Path) -> None:
    args = [*study_args(tmp_path, {"source": "folder", "root": str(tmp_path)}), "--budget_check", json.dumps({"epochs": 2, "arms": ["baseline"], "sd_results": str(tmp_path / "nope")})]
    with pytest.raises(ConfigError, match=r"budget_check\.sd_results: .*nope: no study results there"):
        main(args)
    assert not (tmp_path / "runs").exists()
