"""Training throughput on this machine: model step on synthetic tensors vs the real DataModule.

    python bench/train_throughput.py [--steps 20] [--batch-size 64] [--root data/synthetic] [--precision bf16]

Prints samples/s for (1) the model's training step on random tensors, (2) the data loader
alone (baseline and augmented pipelines, in-process: the cost a worker pays per sample),
(3) end to end (DataModule with workers feeding the model step), and the loader's cost as
a share of the model step. Target: < 10 %.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from htr.data.datamodule import WordDataModule
from htr.model.module import HTRModule
from htr.train.precision import step_rate, train_step


def loader_rate(data: WordDataModule, steps: int) -> float:
    loader = data.train_dataloader()
    it = iter(loader)
    next(it)  # worker start-up is not per-sample cost
    n, start = 0, time.perf_counter()
    for batch in itertools.islice(it, steps):
        n += len(batch["text"])
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--root", default="data/synthetic")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--precision", choices=["32", "bf16"], default="32", help="bf16: autocast as in --trainer.precision bf16-mixed")
    args = parser.parse_args()
    torch.manual_seed(0)

    module = HTRModule()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    words = ["word"] * args.batch_size
    synthetic = [{"image": torch.rand(args.batch_size, 1, 32, 128), "text": words} for _ in range(args.steps)]
    bf16 = args.precision == "bf16"
    step_rate(module, synthetic[:3], opt, bf16)  # warm-up
    model_rate = step_rate(module, synthetic, opt, bf16)
    print(f"model step, synthetic tensors:      {model_rate:8.1f} samples/s (torch threads: {torch.get_num_threads()})")

    for augmentation in ("none", "translate+noise"):
        data = WordDataModule(root=args.root, augmentation=augmentation, batch_size=args.batch_size, num_workers=0)
        data.prepare_data()
        data.setup("fit")
        in_process = loader_rate(data, args.steps)
        share = model_rate / in_process
        print(f"loader alone [{augmentation:>15}], 1 process: {in_process:8.1f} samples/s -> {100 * share:5.1f} % of the model step")
        data = WordDataModule(root=args.root, augmentation=augmentation, batch_size=args.batch_size, num_workers=args.workers)
        data.setup("fit")
        it = iter(data.train_dataloader())
        next(it)  # worker start-up
        end_to_end_start = time.perf_counter()
        n = 0
        module.train()
        for batch in itertools.islice(it, args.steps):
            train_step(module, batch, opt, bf16)
            n += len(batch["text"])
        e2e = n / (time.perf_counter() - end_to_end_start)
        print(f"end to end  [{augmentation:>15}], {args.workers} workers: {e2e:8.1f} samples/s ({100 * (1 - e2e / model_rate):5.1f} % slower than synthetic)")


if __name__ == "__main__":
    main()
