"""Train the SimpleHTR recogniser: ``python train.py --config configs/train/baseline.yaml``.

Every field can be overridden on the command line (``--trainer.max_epochs 3``,
``--data.root /path/to/iam --data.source iam``). ``configs/train/common.yaml`` is always read
first; an experiment config only says what differs. Outputs go to ``runs/<run.name>/``:
checkpoints/ (best by val/cer + last.ckpt), wandb/ (offline by default), metrics.json.
A run whose last.ckpt exists resumes from it (``--run.resume false`` starts afresh).
"""

from __future__ import annotations

import os

# Quiet, predictable W&B: offline unless the user says otherwise; no console noise in tests.
os.environ.setdefault("WANDB_SILENT", "true")

from htr.errors import run_main  # noqa: E402
from htr.train.cli import main  # noqa: E402

if __name__ == "__main__":
    run_main(main, prog="train.py")
