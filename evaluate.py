"""Evaluate checkpoints side by side: ``python evaluate.py CKPT [CKPT ...]``.

Each checkpoint carries its charset and hyper-parameters, so nothing else is needed. All
checkpoints are evaluated on the same data (``--data.*``, default: the embedded synthetic
set) and splits (``--splits test test_unseen``); one table is printed and
``<out>/metrics.json`` written.
"""

from __future__ import annotations

import os

os.environ.setdefault("WANDB_SILENT", "true")

from htr.errors import run_main  # noqa: E402
from htr.experiment.evaluate import main  # noqa: E402

if __name__ == "__main__":
    run_main(main, prog="evaluate.py")
