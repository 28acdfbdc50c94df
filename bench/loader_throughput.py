"""Training-loader samples/s with and without the crop cache, side by side in one run.

    python bench/loader_throughput.py [--n 4096] [--workers 2] [--rounds 3] [--root /tmp/syn-loader]

Each setting iterates one epoch of the training DataLoader (batch 64, the given workers) of a
generated set of ``--n`` words, for every augmentation arm; settings take turns for ``--rounds``
rounds so that load drift hits all alike; the median samples/s and the speed-up of the cache
are printed. The cache itself is built before the rounds (a one-time cost, printed too).
Without the cache every sample is decoded and contrast-normalised every epoch; with it, the
workers only fit, place and augment (``htr/data/cache.py``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from htr.data.augment import AUGMENTATIONS  # noqa: E402
from htr.data.datamodule import WordDataModule  # noqa: E402


def samples_per_second(data: WordDataModule) -> float:
    loader = data.train_dataloader()
    n, start = 0, time.perf_counter()
    for batch in loader:
        n += len(batch["text"])
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4096, help="training words")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default="/tmp/syn-loader")
    args = parser.parse_args()
    synthetic = {"n_train": args.n, "n_val": 64, "n_test": 0, "n_test_unseen": 0}
    common = {"root": args.root, "num_workers": args.workers, "synthetic": synthetic}
    WordDataModule(**common).prepare_data(splits=["train", "val"])
    shutil.rmtree(Path(args.root) / ".crops", ignore_errors=True)
    start = time.perf_counter()
    WordDataModule(**common, cache_crops=True).dataset("train")
    print(f"cache build: {args.n} crops in {time.perf_counter() - start:.1f} s (all cores, once per dataset)")
    speeds: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.rounds):
        for aug in AUGMENTATIONS:
            for cache in (False, True):
                speeds.setdefault((aug, cache), []).append(samples_per_second(WordDataModule(**common, augmentation=aug, cache_crops=cache)))
    print(f"{'augmentation':<16} {'no cache':>10} {'cache':>10} {'speed-up':>9}   (samples/s, median of {args.rounds}, {args.workers} workers)")
    for aug in AUGMENTATIONS:
        plain, cached = statistics.median(speeds[(aug, False)]), statistics.median(speeds[(aug, True)])
        print(f"{aug:<16} {plain:>10.0f} {cached:>10.0f} {cached / plain:>8.2f}x")


if __name__ == "__main__":
    main()
