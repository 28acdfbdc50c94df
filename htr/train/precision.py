"""The fastest training precision on this machine's CPU, measured rather than guessed.

The ``avx512_bf16`` CPU flag does not predict it: on the AMD EPYC machines of this project
bf16 autocast made the training step 1.45x faster, on AVX2-only ones ~18x slower, and on an
Intel Xeon with ``avx512_bf16`` 1.7x slower (bench/README.md). So the choice is made by timing
a few training steps of the real network in each precision (~10 s on 2 cores)::

    python -m htr.train.precision            # prints bf16-mixed or 32-true (rates on stderr)

A GPU always gets ``bf16-mixed``; it is not measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping

import torch

from htr.model.module import HTRModule

FP32, BF16 = "32-true", "bf16-mixed"
# bf16 changes the numerics (the log-probs for CTC stay float32, the convolutions do not), so it
# has to be clearly faster to be chosen: a tie within timing noise keeps fp32.
BF16_MARGIN = 1.1


def train_step(module: HTRModule, batch: dict, optimizer: torch.optim.Optimizer, bf16: bool) -> None:
    """One optimisation step; ``bf16`` = what ``--trainer.precision bf16-mixed`` does on a CPU."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = module.ctc_loss(module(batch["image"]), batch["text"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def step_rate(module: HTRModule, batches: list[dict], optimizer: torch.optim.Optimizer, bf16: bool) -> float:
    """Training samples per second over ``batches`` (the caller warms up first)."""
    module.train()
    n, start = 0, time.perf_counter()
    for batch in batches:
        train_step(module, batch, optimizer, bf16)
        n += len(batch["text"])
    return n / (time.perf_counter() - start)


def measure_cpu_rates(steps: int = 4, batch_size: int = 64, warmup: int = 1) -> dict[str, float]:
    """Samples/s of the default network's training step on random tensors, per precision."""
    if steps < 1 or batch_size < 1 or warmup < 0:
        raise ValueError(f"steps ({steps}) and batch_size ({batch_size}) must be >= 1, warmup ({warmup}) >= 0")
    torch.manual_seed(0)
    batches = [{"image": torch.rand(batch_size, 1, 32, 128), "text": ["word"] * batch_size} for _ in range(steps)]
    rates = {}
    for precision in (FP32, BF16):
        module = HTRModule()  # a fresh network each: the same work for both
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
        bf16 = precision == BF16
        step_rate(module, batches[:warmup], optimizer, bf16)
        rates[precision] = step_rate(module, batches, optimizer, bf16)
    return rates


def fastest(rates: Mapping[str, float], margin: float = BF16_MARGIN) -> str:
    """``bf16-mixed`` where it trains at least ``margin`` times as fast as fp32, else ``32-true``."""
    missing = {FP32, BF16} - set(rates)
    if missing:
        raise ValueError(f"rates: no measurement of {', '.join(sorted(missing))}")
    return BF16 if rates[BF16] >= margin * rates[FP32] else FP32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m htr.train.precision", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per precision (after one warm-up step)")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args(argv)
    if torch.cuda.is_available():
        print(BF16)
        return 0
    try:
        rates = measure_cpu_rates(args.steps, args.batch_size)
    except ValueError as err:
        parser.error(str(err))
    choice = fastest(rates)
    print(
        f"training step on this CPU ({torch.get_num_threads()} torch threads, batch {args.batch_size}): "
        f"fp32 {rates[FP32]:.1f}, bf16 autocast {rates[BF16]:.1f} samples/s -> {choice}",
        file=sys.stderr,
    )
    print(choice)
    return 0


if __name__ == "__main__":
    sys.exit(main())
