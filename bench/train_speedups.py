"""Free training speed-ups, measured side by side in one run on this machine.

    python bench/train_speedups.py [--steps 12] [--rounds 3] [--root /tmp/syn-bench]

Each setting trains the SimpleHTR CRNN (batch 64, AdamW, CTC) on real batches of the embedded
data; settings take turns for ``--rounds`` rounds so that load drift on a shared machine hits
all of them alike, and the median samples/s per setting is printed with its speed-up over
today's recipe (fp32, channels-first, no compile). Settings: channels_last memory format,
intra-op threads, the evaluation batch size (forward only), and with ``--bf16`` / ``--compile``
bf16 autocast and ``torch.compile`` (inductor, CPU). The data is a small generated set (``--root``), so the bench needs no
60 000-image training split.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from htr.data.datamodule import WordDataModule  # noqa: E402
from htr.model.module import HTRModule  # noqa: E402


def batches(root: str, n: int, batch_size: int) -> list[dict]:
    data = WordDataModule(root=root, batch_size=batch_size, num_workers=0, synthetic={"n_train": n * batch_size, "n_val": 64, "n_test": 0, "n_test_unseen": 0})
    data.prepare_data(splits=["train", "val"])
    data.setup("fit")
    it = iter(data.train_dataloader())
    return [next(it) for _ in range(n)]


def train_setting(bf16: bool, channels_last: bool, compile_model: bool, threads: int | None) -> Callable[[list[dict]], float]:
    """A function that trains on the given batches with these settings and returns samples/s."""
    module = HTRModule()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    forward = torch.compile(module.model) if compile_model else module.model

    def run(data: list[dict]) -> float:
        if threads is not None:
            torch.set_num_threads(threads)
        module.train()
        n, start = 0, time.perf_counter()
        for batch in data:
            x = batch["image"].contiguous(memory_format=torch.channels_last) if channels_last else batch["image"]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = module.ctc_loss(forward(x), batch["text"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += len(batch["text"])
        return n / (time.perf_counter() - start)

    return run


def eval_setting(bf16: bool, batch_size: int) -> Callable[[list[dict]], float]:
    module = HTRModule().eval()

    def run(data: list[dict]) -> float:
        x = torch.cat([b["image"] for b in data])
        n, start = 0, time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for i in range(0, len(x), batch_size):
                module.model(x[i : i + batch_size])
                n += len(x[i : i + batch_size])
        return n / (time.perf_counter() - start)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--steps", type=int, default=12, help="training batches per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--root", default="/tmp/syn-bench")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (minutes of compilation)")
    parser.add_argument("--bf16", action="store_true", help="also measure bf16 autocast (fast only on CPUs with native bf16: AVX512-BF16/AMX; ~18x slower on AVX2-only CPUs)")
    args = parser.parse_args()
    torch.manual_seed(0)
    default_threads = torch.get_num_threads()
    data = batches(args.root, args.steps, args.batch_size)
    settings: dict[str, Callable[[list[dict]], float]] = {
        "fp32 (today's recipe)": train_setting(False, False, False, default_threads),
        "fp32 + channels_last": train_setting(False, True, False, default_threads),
        "fp32, 1 intra-op thread": train_setting(False, False, False, 1),
    }
    if args.bf16:
        settings["bf16 autocast"] = train_setting(True, False, False, default_threads)
        settings["bf16 + channels_last"] = train_setting(True, True, False, default_threads)
    if args.compile:
        settings["fp32 + torch.compile"] = train_setting(False, False, True, default_threads)
    for bs in (256, 512):
        settings[f"eval fp32, batch {bs}"] = eval_setting(False, bs)
        if args.bf16:
            settings[f"eval bf16, batch {bs}"] = eval_setting(True, bs)
    for run in settings.values():  # warm-up (and compilation) outside the timing
        run(data[:2])
    rates: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, run in settings.items():
            rates[name].append(run(data))
    torch.set_num_threads(default_threads)
    base = statistics.median(rates["fp32 (today's recipe)"])
    print(f"{'setting':32s} {'samples/s':>10s} {'x fp32 train':>13s}  (median of {args.rounds} rounds, {args.steps} batches of {args.batch_size}, {default_threads} threads)")
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"{name:32s} {med:10.1f} {med / base:13.2f}")


if __name__ == "__main__":
    main()
