"""Write a PNG grid of training samples as the model gets them, to look at the augmentation.

    python -m htr.data.preview --augmentation translate+noise --out augmented.png
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from htr.argparsing import PlainArgumentParser, int_at_least, output_file  # noqa: E402
from htr.data.augment import AUGMENTATIONS  # noqa: E402
from htr.data.datamodule import SOURCES, WordDataModule  # noqa: E402
from htr.data.preprocess import ALIGNMENTS  # noqa: E402
from htr.errors import run_main  # noqa: E402


def preview_grid(data: WordDataModule, n: int = 24, epoch: int = 0, cols: int = 4) -> plt.Figure:
    """The first ``n`` training samples after augmentation, with their labels."""
    ds = data.dataset("train", augment=True)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 0.95))
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= min(n, len(ds)):
            continue
        item = ds[(epoch, k)]
        ax.imshow(item["image"][0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(item["text"], fontsize=8)
    fig.suptitle(f"training samples, augmentation = {data.hparams.augmentation}", fontsize=9)
    fig.tight_layout()
    return fig


def build_parser() -> argparse.ArgumentParser:
    parser = PlainArgumentParser(prog="python -m htr.data.preview", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--augmentation", choices=AUGMENTATIONS, default="translate+noise")
    parser.add_argument("--source", choices=SOURCES, default="synthetic")
    parser.add_argument("--root", default="data/synthetic")
    parser.add_argument("--n", type=int_at_least(1), default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch", type=int_at_least(0), default=0)
    parser.add_argument("--align", choices=ALIGNMENTS, default="left", help="where words sit when not placed at random")
    parser.add_argument("--out", type=output_file("figure"), default="augmentation_preview.png")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Write the preview grid; bad input raises an ``HTRError`` (see ``htr.errors.run_main``)."""
    args = build_parser().parse_args(argv)
    data = WordDataModule(source=args.source, root=args.root, augmentation=args.augmentation, align=args.align, seed=args.seed, num_workers=0)
    data.prepare_data()
    fig = preview_grid(data, args.n, args.epoch)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_main(main, prog="python -m htr.data.preview", log_level=logging.WARNING)
