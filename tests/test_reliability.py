"""Reliability: bad inputs, non-finite losses, determinism, kill-and-resume, DDP on CPU, checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY, WORDS, train_args, write_folder_dataset
from htr.data.datamodule import WordDataModule
from htr.experiment.evaluate import evaluate_split
from htr.experiment.evaluate import main as evaluate_main
from htr.model.module import CheckpointError, HTRModule, TrainingDiverged, load_checkpoint
from htr.train.cli import main as train_main

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "data" / "bad_inputs"


def cli_args(tmp_path: Path, data: Path, *extra: str, config: str = "baseline") -> list[str]:
    return train_args(tmp_path, data, "--run.wandb", "disabled", *extra, config=config)


def test_bad_input_corpus_is_loaded_or_counted(caplog: pytest.LogCaptureFixture) -> None:
    expected = json.loads((BAD / "expected.json").read_text())
    dm = WordDataModule(source="iam", root=str(BAD), num_workers=0, batch_size=4, split_fractions=(1.0, 0.0, 0.0))
    kept = {s.id for s in dm.splits()["train"]}
    assert kept == {wid for wid, (_, what) in expected.items() if what == "loaded"}
    counts: dict[str, int] = {}
    for report in dm.skip_reports:
        for reason, n in report.counts().items():
            counts[reason] = counts.get(reason, 0) + n
    for wid, (_, what) in expected.items():
        if what != "loaded":
            assert counts.get(what, 0) >= 1, (wid, what, counts)
    assert counts["duplicate word ids"] == 1 and counts["lines not UTF-8"] == 1 and counts["lines with fewer than 9 fields"] == 1
    # Every loaded image, however odd (1x1, 10000x10, RGBA, 16-bit), becomes a 1x32x128 sample.
    for item in dm.dataset("train"):
        assert item["image"].shape == (1, 32, 128) and torch.isfinite(item["image"]).all()


def test_bad_folder_labels_are_counted() -> None:
    dm = WordDataModule(source="folder", root=str(BAD), num_workers=0, split_fractions=(1.0, 0.0, 0.0))
    assert [s.text for s in dm.splits()["train"]] == ["fine"]
    counts = {k: v for r in dm.skip_reports for k, v in r.counts().items()}
    assert counts == {"duplicate paths": 1, "empty labels": 1, "labels with tabs/newlines": 1}


def test_training_on_the_bad_corpus_does_not_crash(tmp_path: Path) -> None:
    args = cli_args(tmp_path, BAD, "--trainer.fast_dev_run", "true", "--data.split_fractions", "[1.0, 0.0, 0.0]", "--run.test_splits", "[]")
    args[args.index("folder")] = "iam"
    # fast_dev_run needs a val split: use the training words for validation too.
    (tmp_path / "all.txt").write_text("b01-000\n")
    args += ["--data.split_files", json.dumps({"train": str(tmp_path / "all.txt"), "val": str(tmp_path / "all.txt")})]
    assert train_main(args) == 0


def test_non_finite_loss_is_skipped_then_divergence_stops() -> None:
    module = HTRModule(max_bad_batches=3, **TINY)
    good = {"image": torch.rand(2, 1, 32, 128), "text": ["ab", "c"]}
    bad = {"image": torch.full((2, 1, 32, 128), float("nan")), "text": ["ab", "c"]}
    module.log = lambda *a, **k: None  # no trainer attached
    assert module.training_step(bad, 0) is None and module.skipped_batches == 1
    assert torch.isfinite(module.training_step(good, 1))
    module.training_step(bad, 2)
    module.training_step(bad, 3)
    with pytest.raises(TrainingDiverged, match="3 non-finite losses in a row"):
        module.training_step(bad, 4)
    assert module.skipped_batches == 4


@pytest.mark.slow
def test_same_seed_same_data_order_augmentation_and_metrics(tmp_path: Path, folder_dataset: Path) -> None:
    def first_batch() -> dict:
        dm = WordDataModule(source="folder", root=str(folder_dataset), augmentation="translate+noise", num_workers=0, batch_size=8, seed=5)
        dm.setup("fit")
        return next(iter(dm.train_dataloader()))

    a, b = first_batch(), first_batch()
    assert a["id"] == b["id"] and torch.equal(a["image"], b["image"])
    runs = []
    for name in ("one", "two"):
        assert train_main(cli_args(tmp_path, folder_dataset, "--run.name", name, "--trainer.max_epochs", "1", config="augmented")) == 0
        runs.append(json.loads((tmp_path / "runs" / name / "metrics.json").read_text()))
    assert runs[0]["test"] == runs[1]["test"]
    probes = [(tmp_path / "runs" / n / "diagnostics" / "probes.json").read_text() for n in ("one", "two")]
    assert probes[0] == probes[1]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    data = write_folder_dataset(tmp_path / "words", WORDS, per_word=6)  # 12 steps per epoch
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}

    def command(name: str) -> list[str]:
        return [sys.executable, str(ROOT / "train.py"), *cli_args(tmp_path, data, "--run.name", name, "--trainer.max_epochs", "3")]

    assert subprocess.run(command("straight"), env=env, capture_output=True).returncode == 0
    last = tmp_path / "runs" / "killed" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(command("killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not last.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.is_file(), "the run ended before writing a checkpoint"
    torch.load(last, weights_only=False)  # never half-written
    assert not (tmp_path / "runs" / "killed" / "metrics.json").exists()
    assert subprocess.run(command("killed"), env=env, capture_output=True).returncode == 0
    straight = json.loads((tmp_path / "runs" / "straight" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "runs" / "killed" / "metrics.json").read_text())
    assert resumed["epochs"] == straight["epochs"] == 3
    for key in ("cer", "wer", "acc"):
        assert resumed["test"][key] == pytest.approx(straight["test"][key], abs=1e-6)
    assert resumed["test"]["loss"] == pytest.approx(straight["test"]["loss"], rel=1e-3)


@pytest.mark.slow
def test_ddp_on_cpu_trains_validates_and_writes_once(tmp_path: Path, folder_dataset: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "train.py"), *cli_args(
        tmp_path, folder_dataset, "--run.name", "ddp", "--trainer.max_epochs", "1",
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
    )]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "ddp"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best-000.ckpt", "last.ckpt"]
    assert proc.stderr.count("diagnostics [epoch_000]") == 1  # rank zero only
    metrics = json.loads((run / "metrics.json").read_text())
    # The ranks' test shards, synced, give the CER of the whole split under one process.
    single = evaluate_split(load_checkpoint(metrics["best_checkpoint"]), WordDataModule(source="folder", root=str(folder_dataset), num_workers=0), "test", progress=False)
    assert metrics["test"]["n"] == single["n"] == 32 and metrics["test"]["cer"] == pytest.approx(single["cer"])


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path: Path, folder_dataset: Path) -> None:
    module = HTRModule(charset="abc", **TINY)
    good = tmp_path / "abc.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "pytorch-lightning_version": "2.6.6"}, good)
    assert load_checkpoint(good).charset.chars == "abc"
    tampered = torch.load(good, weights_only=False)
    tampered["hyper_parameters"]["charset"] = "abcdef"  # weights say 4 classes, hparams 7
    torch.save(tampered, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="do not fit the architecture/charset"):
        load_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="other.ckpt: weights do not fit"):
        evaluate_main([str(tmp_path / "other.ckpt"), "--data.source", "folder", "--data.root", str(folder_dataset), "--out", str(tmp_path / "r")])
    # A model with a small charset is still evaluated: test words it cannot spell are skipped and counted.
    assert evaluate_main([str(good), "--data.source", "folder", "--data.root", str(folder_dataset), "--splits", "[test]",
                          "--out", str(tmp_path / "r"), "--diagnostics", "false", "--progress", "false"]) == 0
    result = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert result["abc"]["test"]["n"] == 2  # only "a" (twice) is spelled with a, b, c
    assert "real_handwriting" not in result["abc"]  # no real word is spelled with a, b, c: that set is skipped, not an error


def test_atomic_writes_replace_whole_files_with_the_usual_permissions(tmp_path: Path) -> None:
    from htr.io import atomic_write_bytes, write_json

    target = tmp_path / "out" / "metrics.json"
    write_json(target, {"cer": 0.5})
    write_json(target, {"cer": 0.25})  # replaced, not appended
    assert json.loads(target.read_text()) == {"cer": 0.25}
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() makes it, not mkstemp's 0600

    with pytest.raises(TypeError):  # fails while being written (text to a binary file)
        atomic_write_bytes(target, "half")  # type: ignore[arg-type]
    assert json.loads(target.read_text()) == {"cer": 0.25}
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]
