"""One W&B run per training: a resumed logger continues its W&B run (offline here), steps go on,
nothing twice. End to end (a training stopped by its job's signal, resumed by the requeued job):
tests/test_launcher.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from htr.train.wandb_run import STATE_FILE, ResumableWandbLogger, WandbRunState
from wandb_offline import read_history, read_run


def offline_legs(run_dir: Path) -> list[tuple[dict, list[dict]]]:
    """(run info, history rows) of every offline W&B run folder of a training, oldest first
    (a killed leg's folder may hold no record at all: its id is the folder name's end)."""
    return [({"id": d.name.rsplit("-", 1)[1], **read_run(d)}, read_history(d)) for d in sorted((run_dir / "wandb").glob("offline-run-*"))]


def assert_one_run_steps_go_on(legs: list[tuple[dict, list[dict]]]) -> None:
    """One run id; W&B steps strictly increasing over all legs; no key at one trainer step in two legs
    (within a leg, diagnostics at the end of fit and of test share the last step)."""
    assert len({info["id"] for info, _ in legs}) == 1, [info["id"] for info, _ in legs]
    steps = [row["_step"] for _, rows in legs for row in rows]
    assert steps == sorted(set(steps)), steps
    per_leg = [{(k, row["trainer/global_step"]) for row in rows if "trainer/global_step" in row for k in row if not k.startswith(("_", "trainer/"))} for _, rows in legs]
    for i, earlier in enumerate(per_leg):
        for later in per_leg[i + 1:]:
            assert not earlier & later, sorted(earlier & later)


def test_a_resumed_logger_continues_the_run_and_skips_replayed_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    state = tmp_path / STATE_FILE

    def leg(resume: bool, rows: list[tuple[int, dict]]) -> str:
        logger = ResumableWandbLogger(state_file=state, resume=resume, name="leg", project="p", save_dir=str(tmp_path), mode="offline")
        for step, metrics in rows:
            logger.log_metrics(metrics, step=step)
        run_id = logger.experiment.id
        logger.experiment.finish()
        return run_id

    first = leg(False, [(0, {"train/loss": 3.0}), (4, {"train/loss": 2.0, "val/cer": 0.9}), (6, {"train/loss": 1.5})])
    assert WandbRunState.load(state) == WandbRunState(first, [[0, 0, ["train/loss"]], [1, 4, ["train/loss", "val/cer"]], [2, 6, ["train/loss"]]])
    # A row the state knows of that W&B never wrote (a killed process): the resumed leg logs that step again.
    lost = WandbRunState.load(state)
    lost.rows.append([3, 7, ["train/loss"]])
    lost.save(state)
    # Resumed from the step-4 checkpoint: step 6 of train/loss is a replay; 7 was lost; val/cer at 8 and the test are new.
    again = leg(True, [(4, {"lr": 0.1}), (6, {"train/loss": 1.5}), (7, {"train/loss": 1.2}), (8, {"train/loss": 1.0, "val/cer": 0.5}), (8, {"test/cer": 0.4})])
    assert again == first
    legs = offline_legs(tmp_path)
    assert len(legs) == 2
    assert_one_run_steps_go_on(legs)
    second = [{k: v for k, v in row.items() if not k.startswith("_")} for row in legs[1][1]]
    assert second == [
        {"lr": 0.1, "trainer/global_step": 4}, {"train/loss": 1.2, "trainer/global_step": 7},
        {"train/loss": 1.0, "val/cer": 0.5, "trainer/global_step": 8}, {"test/cer": 0.4, "trainer/global_step": 8},
    ]
    assert [row["_step"] for row in legs[1][1]] == [3, 4, 5, 6]
    # --run.resume false: a new W&B run, whatever the state file says.
    assert leg(False, [(0, {"train/loss": 3.0})]) != first
