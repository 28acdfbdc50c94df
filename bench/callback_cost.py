"""Cost of the training-time DiagnosticsCallback at its default settings, vs a training epoch.

    python bench/callback_cost.py [--ckpt checkpoints/baseline.ckpt] [--root data/synthetic]

Runs what the callback runs once per validation epoch (``diagnose`` on 16 probe words with the
defaults of configs/train/common.yaml) and prints seconds; compare with the epoch time of a run
(bench/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from htr.data.datamodule import WordDataModule  # noqa: E402
from htr.diagnostics.scorer import CRNNScorer  # noqa: E402
from htr.diagnostics.settings import DiagnosticsSettings  # noqa: E402
from htr.model.module import load_checkpoint  # noqa: E402
from htr.train.callbacks import DiagnosticsCallback  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default="checkpoints/baseline.ckpt")
    parser.add_argument("--root", default="data/synthetic")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    module = load_checkpoint(args.ckpt)
    # The settings configs/train/common.yaml gives the callback.
    cb = DiagnosticsCallback(settings=DiagnosticsSettings(relevance_probes=2, relevance_window=4))
    data = WordDataModule(root=args.root, num_workers=0)
    settings = cb.settings
    probes = settings.choose_probes(data.splits()[settings.probe_split])
    for _ in range(args.repeats):
        start = time.perf_counter()
        diag = settings.diagnose(CRNNScorer.of(module), probes)
        figures = cb.figures_of(diag, probes)
        for fig, _ in figures.values():
            fig.savefig("/dev/null", format="png", dpi=100)
        print(f"diagnostics on {len(probes)} probes ({settings.relevance_probes} maps, window {settings.relevance_window}): {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
