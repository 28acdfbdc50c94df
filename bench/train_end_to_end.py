"""End-to-end training samples/s (loader + model step, Lightning loop) with and without the crop
cache, side by side in one run on this machine.

    python bench/train_end_to_end.py [--steps 40] [--warmup 5] [--rounds 2] [--augmentation translate+noise]
    python bench/train_end_to_end.py --accelerator gpu --workers 3 --steps 400 --warmup 20   # on a GPU

Each setting trains the SimpleHTR CRNN (batch 64, the study's recipe, fp32 unless ``--precision``) through
``pl.Trainer.fit`` on a generated set for ``--warmup + --steps`` batches and times the last
``--steps`` (loader workers started, caches warm); settings take turns for ``--rounds`` rounds.
``--accelerator``/``--precision`` are the trainer's (``gpu``, ``bf16-mixed``); a GPU step is cheap,
so give it a few hundred steps.
On a CPU the model step dominates, so the cache gains little here; where the step is cheap (a
GPU) the loader is what limits, and the loader bench (``loader_throughput.py``) shows the cache's
share.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pytorch_lightning as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from htr.data.datamodule import WordDataModule  # noqa: E402
from htr.model.module import HTRModule  # noqa: E402


class StepTimer(pl.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.samples = warmup, 0.0, 0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: dict, batch_idx: int) -> None:
        if batch_idx == self.warmup:
            self.start, self.samples = time.perf_counter(), 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: dict, batch_idx: int) -> None:
        if batch_idx >= self.warmup:
            self.samples += len(batch["text"])
            self.elapsed = time.perf_counter() - self.start


def generated_set(n: int) -> dict[str, int]:
    """The bench's generated data: n training words, a token val split, no test splits."""
    return {"n_train": n, "n_val": 64, "n_test": 0, "n_test_unseen": 0}


def samples_per_second(
    root: str, n: int, workers: int, augmentation: str, cache: bool, steps: int, warmup: int, accelerator: str = "cpu", precision: str = "32-true"
) -> float:
    data = WordDataModule(root=root, num_workers=workers, augmentation=augmentation, cache_crops=cache, synthetic=generated_set(n))
    timer = StepTimer(warmup)
    trainer = pl.Trainer(
        accelerator=accelerator, devices=1, precision=precision, max_steps=warmup + steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer], use_distributed_sampler=False,
    )
    trainer.fit(HTRModule(), datamodule=data)
    return timer.samples / timer.elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--augmentation", default="translate+noise")
    parser.add_argument("--root", default="/tmp/syn-e2e")
    parser.add_argument("--accelerator", default="cpu", help="cpu | gpu")
    parser.add_argument("--precision", default="32-true", help="32-true (the study's) | bf16-mixed")
    args = parser.parse_args()
    n = 64 * (args.steps + args.warmup + 1)
    WordDataModule(root=args.root, synthetic=generated_set(n)).prepare_data(splits=["train", "val"])
    speeds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for cache in (False, True):
            speeds[cache].append(samples_per_second(
                args.root, n, args.workers, args.augmentation, cache, args.steps, args.warmup, args.accelerator, args.precision
            ))
    plain, cached = statistics.median(speeds[False]), statistics.median(speeds[True])
    print(f"{args.accelerator}, {args.precision}, {args.augmentation}, {args.workers} workers, {args.steps} timed steps, median of {args.rounds}: "
          f"no cache {plain:.1f} samples/s, cache {cached:.1f} samples/s, speed-up {cached / plain:.2f}x")


if __name__ == "__main__":
    main()
