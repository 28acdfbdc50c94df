"""Slim a training checkpoint for shipping: ``python -m tools.slim_checkpoint SRC DST``.

Keeps the weights, the hyper-parameters that rebuild the model and its data, and the run's
provenance (name, seed, commit, W&B id, epochs); drops the optimizer, scheduler and loop states
that only resuming needs (about two thirds of the file). See :func:`htr.model.module.slim_checkpoint`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from htr.argparsing import PlainArgumentParser
from htr.errors import run_main
from htr.model.module import slim_checkpoint

log = logging.getLogger("htr.slim")


def main(argv: list[str] | None = None) -> int:
    parser = PlainArgumentParser(prog="python -m tools.slim_checkpoint", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="a checkpoint written by train.py (best-*.ckpt or last.ckpt)")
    parser.add_argument("dst", help="where the slimmed checkpoint goes (written atomically)")
    args = parser.parse_args(argv)
    slim = slim_checkpoint(args.src, args.dst)
    run = slim.get("htr_run") or {}
    log.info("%s -> %s (%.1f MB; run %s, commit %s)", args.src, args.dst, Path(args.dst).stat().st_size / 1e6, run.get("name", "unknown"), run.get("commit", "unknown"))
    return 0


if __name__ == "__main__":  # a bad path or checkpoint: one line, exit 2 (htr.errors.run_main)
    run_main(main, prog="python -m tools.slim_checkpoint")
