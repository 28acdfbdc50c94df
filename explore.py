"""Interactive explorer: ``python explore.py CKPT [CKPT ...]`` (same as ``python -m htr.explore``)."""

from __future__ import annotations

import os

os.environ.setdefault("WANDB_SILENT", "true")

from htr.errors import run_main  # noqa: E402
from htr.explore.__main__ import LOG_LEVEL, main  # noqa: E402

if __name__ == "__main__":
    run_main(main, prog="explore.py", log_level=LOG_LEVEL)
