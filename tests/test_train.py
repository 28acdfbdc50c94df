"""End-to-end training through train.py's CLI on a tiny folder dataset made by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from conftest import TINY, train_args, write_folder_dataset
from htr.data.datamodule import WordDataModule
from htr.data.readers import DatasetError
from htr.model.module import CheckpointError, HTRModule, load_checkpoint, slim_checkpoint
from htr.train.cli import main


def train(tmp_path: Path, data_root: Path, *extra: str, config: str = "baseline", tiny: bool = True) -> int:
    return main(train_args(tmp_path, data_root, *extra, config=config, tiny=tiny))


@pytest.mark.parametrize("config", ["baseline", "augmented"])
def test_fast_dev_run(tmp_path: Path, folder_dataset: Path, config: str) -> None:
    assert train(tmp_path, folder_dataset, "--trainer.fast_dev_run", "true", config=config) == 0


@pytest.mark.slow
def test_overfit_eight_samples_to_zero_cer_and_reload(tmp_path: Path) -> None:
    words = ["are", "the", "Moon", "tell", "of", "12", "pool", "go"]  # repeats: Moon, tell, pool
    # Each word 8 times (different seeds, same text): 8 steps of 8 per epoch, 800 steps in all.
    data_root = write_folder_dataset(tmp_path / "eight", words, per_word=8)
    code = train(
        tmp_path, data_root,
        "--trainer.max_epochs", "100", "--model.lr", "0.001", "--model.scheduler", "none",
        "--trainer.check_val_every_n_epoch", "50", "--run.wandb", "disabled", "--run.name", "overfit", tiny=False,
    )
    assert code == 0
    run = tmp_path / "runs" / "overfit"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["cer"] == 0.0 and metrics["test"]["acc"] == 1.0 and metrics["test"]["n"] == 64

    # A checkpoint alone reproduces the model: same charset, same predictions.
    module = load_checkpoint(metrics["best_checkpoint"])
    assert module.charset.chars == WordDataModule().charset
    dm = WordDataModule(source="folder", root=str(data_root), num_workers=0)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert module.predict_texts(batch["image"]) == batch["text"]
    again = HTRModule.load_from_checkpoint(metrics["best_checkpoint"], map_location="cpu").eval()
    with torch.no_grad():
        assert torch.equal(again(batch["image"]), module(batch["image"]))


@pytest.mark.slow
def test_resume_continues_the_epoch_count(tmp_path: Path, folder_dataset: Path) -> None:
    args = ("--run.wandb", "disabled", "--run.name", "resumed")
    assert train(tmp_path, folder_dataset, "--trainer.max_epochs", "1", *args) == 0
    last = tmp_path / "runs" / "resumed" / "checkpoints" / "last.ckpt"
    steps_per_epoch = 32 // 8
    assert torch.load(last, weights_only=False)["global_step"] == steps_per_epoch
    assert train(tmp_path, folder_dataset, "--trainer.max_epochs", "3", *args) == 0
    # Continued from epoch 1: three epochs of steps in all, not 1 + 3.
    assert torch.load(last, weights_only=False)["global_step"] == 3 * steps_per_epoch
    metrics = json.loads((tmp_path / "runs" / "resumed" / "metrics.json").read_text())
    assert metrics["epochs"] == 3
    # The history spans both legs (kept in the checkpoint), not only the resumed one.
    assert metrics["epochs_run"] == 3 and len(metrics["val_cer_history"]) == 3
    assert metrics["final_val_cer"] == metrics["val_cer_history"][-1]
    assert metrics["precision"] == "32-true" and metrics["device"].startswith("cpu") and metrics["wall_time_s"] > 0

    # Slimmed for shipping: no resume state, the same model, the same provenance (not "unknown").
    slim_path = tmp_path / "shipped.ckpt"
    slim = slim_checkpoint(last, slim_path)
    assert "optimizer_states" not in slim and "htr_run" in slim and slim_path.stat().st_size < last.stat().st_size / 2
    full, shipped = load_checkpoint(last), load_checkpoint(slim_path)
    assert {k: v for k, v in shipped.provenance.items() if k != "checkpoint"} == {k: v for k, v in full.provenance.items() if k != "checkpoint"}
    assert shipped.provenance["run_name"] == "resumed" and shipped.provenance["augmentation"] == "none" and shipped.provenance["epochs"] == 3
    x = torch.rand(2, 1, 32, 128)
    with torch.no_grad():
        assert torch.equal(shipped(x), full(x))


REPO = Path(__file__).resolve().parents[1]
# The shipped pair and any arm staged for the next pair by tools/retrain_shipped.sh (checkpoints/next/).
SHIPPED = [("checkpoints", "docs/results/default", arm) for arm in ("baseline", "augmented")]
STAGED = [("checkpoints/next", "docs/results/next", p.stem) for p in sorted((REPO / "checkpoints" / "next").glob("*.ckpt"))]


@pytest.mark.parametrize(("folder", "records", "arm"), SHIPPED + STAGED)
def test_shipped_checkpoints_name_their_provenance(folder: str, records: str, arm: str) -> None:
    # What a report of a shipped (or staged) checkpoint says agrees with the run records beside it.
    config = yaml.safe_load((REPO / records / f"{arm}-config.yaml").read_text())
    metrics = json.loads((REPO / records / f"{arm}-metrics.json").read_text())
    provenance = load_checkpoint(REPO / folder / f"{arm}.ckpt").provenance
    assert "unknown" not in provenance.values(), provenance
    assert provenance["augmentation"] == config["data"]["augmentation"] and provenance["seed"] == config["seed_everything"]
    assert provenance["run_name"] == metrics["run"]
    # The shipped file is the run's best checkpoint by validation CER: trained that many epochs.
    history = metrics["val_cer_history"]
    assert len(history) == metrics["epochs_run"] and provenance["epochs"] == history.index(min(history)) + 1


def test_weights_digest_names_the_weights_not_the_file() -> None:
    from htr.provenance import weights_digest

    torch.manual_seed(0)
    state = HTRModule(**TINY).state_dict()
    digest = weights_digest(state)
    assert len(digest) == 12 and weights_digest({k: v.clone() for k, v in reversed(state.items())}) == digest  # copies, any order
    key = next(k for k, v in state.items() if v.is_floating_point())
    nudged = {**state, key: state[key].clone()}
    nudged[key].view(-1)[0] += 1e-3
    assert weights_digest(nudged) != digest
    assert weights_digest({f"renamed.{k}" if k == key else k: v for k, v in state.items()}) != digest
    assert weights_digest({**state, key: state[key].double()}) != digest  # another dtype is another model file


def test_bad_checkpoints_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")


def test_missing_dataset_root_exits_with_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="absent: dataset folder not found") as err:
        train(tmp_path, tmp_path / "absent", "--run.wandb", "disabled")
    assert err.value.exit_code == 2


def test_bad_data_root_leaves_no_wandb_run(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="absent: dataset folder not found"):
        train(tmp_path, tmp_path / "absent", "--run.wandb", "offline", "--run.name", "bad")
    assert not list((tmp_path / "runs" / "bad").rglob("offline-run-*"))
