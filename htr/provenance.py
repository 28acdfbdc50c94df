"""Where a model came from: the code commit, the training run, the recipe, read back from a checkpoint.

Training stores ``checkpoint["htr_run"]`` (run name, group, W&B id, seed, commit; see
``HTRModule.on_save_checkpoint``); Lightning itself stores the epoch, the model's and the
data's hyper-parameters. Older checkpoints lack some of it: those fields read ``unknown``. The
weights' digest names the exact model (a run name or path may be reused by a retraining).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

UNKNOWN = "unknown"
# What a run trained with W&B disabled records as its W&B id and name (recorded, not unknown).
NO_WANDB = "none (W&B disabled)"


def git_commit(root: Path | None = None) -> str:
    """Short commit of the code (``+dirty`` with uncommitted changes), or ``unknown`` outside git.

    ``root`` defaults to this package's folder: the commit of the code that runs, wherever it runs from."""
    root = root or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode:
            return UNKNOWN
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN


def weights_digest(state_dict: Mapping[str, Any]) -> str:
    """The first 12 hex digits of a SHA-256 over the weights (names, dtypes, shapes, values).

    A checkpoint and its slimmed copy (or one whose recorded provenance was rewritten) share it;
    other weights, e.g. the same run name retrained, do not: it tells which model a result came from."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


def checkpoint_provenance(path: str | Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    """What a report says about a checkpoint: path, recipe, epochs, training run, commit, weights."""
    run = dict(ckpt.get("htr_run") or {})
    data = dict(ckpt.get("datamodule_hyper_parameters") or {})
    hparams = dict(ckpt.get("hyper_parameters") or {})
    epoch = ckpt.get("epoch")
    return {
        "checkpoint": str(path),
        "augmentation": data.get("augmentation", UNKNOWN),
        "pooling": hparams.get("pooling", UNKNOWN),
        # Older checkpoints lack "epochs_trained"; they were saved at validation, where Lightning's
        # epoch index + 1 is the epochs done.
        "epochs": ckpt.get("epochs_trained") or (int(epoch) + 1 if isinstance(epoch, int) else UNKNOWN),
        "global_step": ckpt.get("global_step", UNKNOWN),
        "seed": run.get("seed", UNKNOWN),
        "commit": run.get("commit", UNKNOWN),
        "run_name": run.get("name", UNKNOWN),
        "run_group": run.get("group", UNKNOWN),
        "wandb_id": run.get("wandb_id", UNKNOWN),
        "wandb_name": run.get("wandb_name", UNKNOWN),
        "weights": weights_digest(ckpt["state_dict"]) if "state_dict" in ckpt else UNKNOWN,
    }
