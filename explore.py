"""Interactive explorer: ``python explore.py CKPT [CKPT ...]`` (same as ``python -m htr.explore``)."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("WANDB_SILENT", "true")

from htr.explore.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
