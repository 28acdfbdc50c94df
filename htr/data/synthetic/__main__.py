"""CLI of the synthetic dataset.

    python -m htr.data.synthetic generate --root data/synthetic [--n_train N ...]
    python -m htr.data.synthetic contact-sheet --out data/contact_sheet.png [--real data/real-handwriting data/real-words]
    python -m htr.data.synthetic fonts          # fonts found, style, split role, dropped characters
    python -m htr.data.synthetic bench          # render vs load speed
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from htr.argparsing import PlainArgumentParser, int_at_least, output_file
from htr.data.preprocess import load_image, to_canvas
from htr.data.synthetic.dataset import SyntheticConfig, render_sample, render_sample_with_writer
from htr.data.synthetic.fonts import available_fonts
from htr.errors import UsageError, run_main


def _tile(image: np.ndarray, caption: str, height: int = 64, width: int = 240) -> np.ndarray:
    """A raw crop scaled to ``height`` beside its 32x128 canvas at 2x, captioned."""
    s = min(height / image.shape[0], (width - 8) / image.shape[1])
    raw = cv2.resize(image, (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s))), interpolation=cv2.INTER_AREA)
    canvas = cv2.copyMakeBorder(cv2.resize(to_canvas(image), (256, 64), interpolation=cv2.INTER_NEAREST), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    tile = np.full((height + 20, width + 262), 235, np.uint8)
    tile[: raw.shape[0], : raw.shape[1]] = raw
    tile[: canvas.shape[0], width : width + canvas.shape[1]] = canvas
    im = Image.fromarray(tile)
    ImageDraw.Draw(im).text((2, height + 5), caption[:70], fill=0)
    return np.asarray(im)


def _grid(tiles: list[np.ndarray], columns: int, title: str) -> np.ndarray:
    th, tw = tiles[0].shape
    rows = -(-len(tiles) // columns)
    out = np.full((rows * (th + 6) + 24, columns * (tw + 8)), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        out[24 + r * (th + 6) : 24 + r * (th + 6) + th, c * (tw + 8) : c * (tw + 8) + tw] = t
    im = Image.fromarray(out)
    ImageDraw.Draw(im).text((4, 6), title, fill=0)
    return np.asarray(im)


def contact_sheet(out: str | Path, config: SyntheticConfig | None = None, n: int = 24, real: Sequence[str | Path] = (), real_words: int = 9) -> Path:
    """PNG of real words (the first ``real_words`` of each folder in ``real`` with a labels.tsv)
    beside synthetic train and held-out-font samples: each raw crop next to the 32x128 canvas the
    model sees (2x, framed)."""
    config = config or SyntheticConfig()
    sections = []
    for folder in map(Path, real):
        tiles = []
        for line in (folder / "labels.tsv").read_text(encoding="utf-8").splitlines()[:real_words]:
            rel, text = line.split("\t", 1)
            tiles.append(_tile(load_image(folder / rel), f"real: {text}"))
        sections.append(_grid(tiles, 3, f"Real handwriting ({folder}): raw scan | canvas after preprocessing"))
    for split, title in (("train", "Synthetic training writers"), ("test_unseen", "Synthetic held-out fonts (test_unseen)")):
        tiles = []
        for i in range(n if split == "train" else n // 2):
            image, text, writer = render_sample_with_writer(config, split, i)
            tiles.append(_tile(image, f"{text}  [{writer.font.name}, {writer.font.style}]"))
        sections.append(_grid(tiles, 3, f"{title}: raw crop | canvas"))
    width = max(s.shape[1] for s in sections)
    sheet = np.vstack([np.pad(s, ((0, 8), (0, width - s.shape[1])), constant_values=255) for s in sections])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out, optimize=True)
    return out


def benchmark(n: int = 300, config: SyntheticConfig | None = None) -> dict[str, float]:
    """Samples/s of rendering (single process) vs loading a PNG + ``to_canvas``; also PNG bytes."""
    config = config or SyntheticConfig()
    render_sample(config, "train", 0)  # warm the caches (fonts, vocabulary)
    t0 = time.perf_counter()
    images = [render_sample(config, "train", i)[0] for i in range(n)]
    render_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, im in enumerate(images):
            p = os.path.join(d, f"{i}.png")
            cv2.imwrite(p, im)
            paths.append(p)
        nbytes = sum(os.path.getsize(p) for p in paths)
        t0 = time.perf_counter()
        for p in paths:
            to_canvas(load_image(p))
        load_s = time.perf_counter() - t0
    return {
        "render_per_s": n / render_s,
        "load_plus_canvas_per_s": n / load_s,
        "png_kib_mean": nbytes / n / 1024,
        "crop_h_mean": float(np.mean([im.shape[0] for im in images])),
        "crop_w_mean": float(np.mean([im.shape[1] for im in images])),
    }


# Letter-shape, prose and capture options of SyntheticConfig, settable from the command line.
SHAPE_OPTIONS = {
    "p_restroke": "share of writers re-stroked along the centre line with a round pen",
    "restroke_jitter": "largest centre-line displacement, fraction of the size",
    "p_connect": "share of print-font writers who join letters",
    "p_attached": "share of words with prose punctuation attached",
    "p_binarize": "share of crops binarised as by a capture tool (light strokes broken)",
}


def _config(args: argparse.Namespace) -> SyntheticConfig:
    kw = {"seed": args.seed, "extra_fonts": args.extra_fonts}
    if args.heldout_fonts:
        kw["heldout_fonts"] = tuple(s.strip() for s in args.heldout_fonts.split(",") if s.strip())
    for name in ("n_train", "n_val", "n_test", "n_test_unseen", *SHAPE_OPTIONS):
        if getattr(args, name, None) is not None:
            kw[name] = getattr(args, name)
    return SyntheticConfig(**kw)


def main(argv: Sequence[str] | None = None) -> int:
    parser = PlainArgumentParser(prog="python -m htr.data.synthetic", description="The embedded synthetic handwriting dataset.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=PlainArgumentParser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--extra_fonts", default=None, help="glob of extra .ttf/.otf/.woff/.woff2 files")
        p.add_argument("--heldout_fonts", default=None, help="comma list of font names or families (default: the vendored held-out set)")
        for name, help_text in SHAPE_OPTIONS.items():
            p.add_argument(f"--{name}", type=float, default=None, help=f"{help_text} (SyntheticConfig.{name})")

    g = sub.add_parser("generate", help="materialise the splits to a folder")
    g.add_argument("--root", default="data/synthetic")
    for name in ("train", "val", "test", "test_unseen"):
        g.add_argument(f"--n_{name}", type=int, default=None)
    g.add_argument("--workers", type=int_at_least(1), default=None, help="processes (default: every CPU core)")
    g.add_argument("--no_progress", action="store_true")
    common(g)
    c = sub.add_parser("contact-sheet", help="PNG of synthetic samples beside real words")
    c.add_argument("--out", type=output_file("image"), default="data/contact_sheet.png")
    c.add_argument("--n", type=int_at_least(2), default=24, help="training samples shown (held-out: half as many)")
    c.add_argument("--real", nargs="*", default=[], help="folders with a labels.tsv of real word images (e.g. data/real-handwriting data/real-words)")
    c.add_argument("--real_words", type=int_at_least(1), default=9, help="words shown of each real folder")
    common(c)
    f = sub.add_parser("fonts", help="list fonts, style, split role and dropped characters")
    common(f)
    b = sub.add_parser("bench", help="render vs load speed")
    b.add_argument("-n", type=int_at_least(1), default=300)
    common(b)
    args = parser.parse_args(argv)
    try:
        config = _config(args)
    except ValueError as err:  # SyntheticConfig's own checks ("synthetic.n_train must be >= 0, got -1")
        raise UsageError(str(err)) from None
    if args.command == "generate":
        from htr.data.synthetic.dataset import materialize

        t0 = time.perf_counter()
        root = materialize(args.root, config, progress=not args.no_progress, workers=args.workers)
        nbytes = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
        print(f"{root}: ready in {time.perf_counter() - t0:.1f} s, {nbytes / 2**20:.1f} MiB")
    elif args.command == "contact-sheet":
        print(contact_sheet(args.out, config, n=args.n, real=args.real, real_words=args.real_words))
    elif args.command == "fonts":
        unseen = {f.name for f in config.fonts("test_unseen")}
        fonts = available_fonts(config.extra_fonts)
        for font in fonts:
            role = "test_unseen" if font.name in unseen else "train/val/test"
            print(f"{font.name:34s} {font.style:8s} {'joined' if font.joined else 'glyphs':7s} {font.license:11s} {role:15s} dropped={font.dropped!r}")
        print(f"{len(fonts)} fonts, {len({f.family for f in fonts})} families, {len(unseen)} held out")
    elif args.command == "bench":
        cv2.setNumThreads(1)
        for k, v in benchmark(args.n, config).items():
            print(f"{k}: {v:.1f}")
    return 0


if __name__ == "__main__":
    run_main(main, prog="python -m htr.data.synthetic")
