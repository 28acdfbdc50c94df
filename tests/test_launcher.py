"""The study as submitit jobs (submitit's local executor: real job processes, no Slurm): a job
signalled mid-training requeues itself, resumes from its last.ckpt into the same W&B run and
finishes with the results of an uninterrupted run; the report aggregates what the jobs wrote."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from test_wandb_resume import assert_one_run_steps_go_on, offline_legs

from conftest import CHEAP_DIAGNOSTICS, TINY_MODEL, WORDS, write_folder_dataset
from htr.experiment.study import main

ROOT = Path(__file__).resolve().parent.parent
LOCAL_JOBS = {"cluster": "local", "gpus_per_node": 0, "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 30}


def study_args(tmp_path: Path, words: Path, arms: dict[str, str], seeds: list[int], *train: str) -> list[str]:
    """A tiny study of ``arms`` (name: config in configs/train/) as the study tests make it."""
    train_args = [
        "--trainer.limit_val_batches", "1", "--trainer.enable_model_summary", "false",
        "--data.num_workers", "0", "--run.wandb", "disabled", *CHEAP_DIAGNOSTICS, *TINY_MODEL, *train,
    ]
    return [
        "--arms", json.dumps({arm: str(ROOT / "configs" / "train" / f"{config}.yaml") for arm, config in arms.items()}),
        "--seeds", json.dumps(seeds),
        "--train_args", json.dumps(train_args),
        "--data", json.dumps({"source": "folder", "root": str(words), "batch_size": 8}),
        "--run_dir", str(tmp_path / "runs"), "--results", str(tmp_path / "results"), "--splits", "[test]",
        "--num_probes", "4", "--relevance_probes", "1", "--relevance_window", "8", "--relevance_stride", "8",
    ]


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.slow
def test_two_job_study_one_signalled_mid_training_requeues_and_finishes_as_its_uninterrupted_twin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    words = write_folder_dataset(tmp_path / "words", WORDS, per_word=6)  # 12 steps an epoch
    # Two arms of one config: the same training twice, as two jobs side by side; "twin" is signalled.
    train = ("--trainer.max_epochs", "2", "--run.wandb", "offline", "--trainer.log_every_n_steps", "1")
    args = [
        *study_args(tmp_path, words, {"baseline": "baseline", "twin": "baseline"}, [0], *train),
        "--launcher", "submitit", "--slurm", json.dumps(LOCAL_JOBS),
    ]
    monkeypatch.delenv("WANDB_SERVICE", raising=False)  # the jobs' trainings start their own W&B service
    done: list[int] = []
    with caplog.at_level(logging.INFO, logger="htr.study"):
        study = threading.Thread(target=lambda: done.append(main(args)))
        study.start()
        last = tmp_path / "runs" / "twin-s0" / "checkpoints" / "last.ckpt"
        deadline = time.time() + 300
        while not last.is_file() and time.time() < deadline and study.is_alive():
            time.sleep(0.05)
        assert last.is_file(), "the job never wrote a checkpoint"
        time.sleep(1.0)  # into the next epoch
        submitted = {m.split(": job ")[0]: m for m in (r.getMessage() for r in caplog.records) if ": job " in m}
        # As Slurm does before a time-out: the signal to every process of the job (the training ignores it).
        (job,) = child_pids(int(submitted["twin-s0"].split(": job ")[1].split()[0]))
        (training,) = child_pids(job)
        os.kill(training, signal.SIGUSR2)
        os.kill(job, signal.SIGUSR2)
        study.join(timeout=600)
    assert done == [0]
    # Each job's id and log files were printed; the logs tell what happened.
    logs = {}
    for name, line in submitted.items():
        stdout, stderr = (Path(p) for p in line.split(", log ")[1].split(", errors "))
        logs[name] = stdout.read_text() + stderr.read_text()
        assert f"training {name}:" in logs[name], name
    assert "training stopped by SIGTERM" in logs["twin-s0"], "the signal came after the training had ended"
    assert "Requeued job" in logs["twin-s0"] and "resuming from" in logs["twin-s0"]
    assert "Requeued job" not in logs["baseline-s0"]
    straight, resumed = (json.loads((tmp_path / "results" / "runs" / f"{n}-s0.json").read_text()) for n in ("baseline", "twin"))
    assert resumed["training"]["epochs_run"] == straight["training"]["epochs_run"] == 2
    assert resumed["training"]["val_cer_history"] == pytest.approx(straight["training"]["val_cer_history"], abs=1e-6)
    for key in ("cer", "wer", "acc"):
        assert resumed["test"][key] == pytest.approx(straight["test"][key], abs=1e-6)
    assert resumed["test"]["loss"] == pytest.approx(straight["test"]["loss"], rel=1e-3)
    assert resumed["diagnostics"]["acc@shift0"] == straight["diagnostics"]["acc@shift0"]
    # One W&B run for the twin's two legs: its steps go on, each training step logged once (the
    # resumed leg replayed the steps after its checkpoint without logging them again).
    legs = offline_legs(tmp_path / "runs" / "twin-s0")
    assert [info["exit_code"] for info, _ in legs] == [143, 0]
    assert_one_run_steps_go_on(legs)
    assert sorted(row["trainer/global_step"] for _, rows in legs for row in rows if "train/loss" in row) == list(range(24))
    assert [len(rows) > 0 for _, rows in offline_legs(tmp_path / "runs" / "baseline-s0")] == [True]
    # The report aggregates what the jobs wrote.
    report = (tmp_path / "results" / "README.md").read_text()
    assert "| baseline (1) |" in report and "| twin (1) |" in report
