"""Evaluate checkpoints side by side: ``python evaluate.py CKPT [CKPT ...]``.

Each checkpoint carries its charset and hyper-parameters, so nothing else is needed. All
checkpoints are evaluated on the same data (``--data.*``, default: the embedded synthetic
set) and splits (``--splits test test_unseen``); one table is printed and
``<out>/metrics.json`` written.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("WANDB_SILENT", "true")

from htr.experiment.evaluate import main  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
