"""The whole study: ``python study.py --config configs/study/study.yaml`` (``--quick`` for a smoke test).

Trains every arm for every seed (skipping runs whose results exist), evaluates all of them on
the same data and probe set, and writes the study report (mean ± sd per arm) to ``results``.
"""

from __future__ import annotations

import os

os.environ.setdefault("WANDB_SILENT", "true")

from htr.errors import run_main  # noqa: E402
from htr.experiment.study import main  # noqa: E402

if __name__ == "__main__":
    run_main(main, prog="study.py")
