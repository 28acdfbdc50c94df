"""Command line: ``python -m htr.diagnostics {edit,relevance,shift} CKPT IMAGE --text TEXT ...``.

IMAGE is any word image file; it goes through the project's preprocessing (``load_image`` +
``to_canvas``). Bad input (missing file, bad edit spec, characters outside the checkpoint's
charset) prints one ``error:`` line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from htr.argparsing import PlainArgumentParser, one_line
from htr.data.preprocess import ImageError, load_image, to_canvas
from htr.diagnostics.edits import SPEC_HELP, EditSpecError, edit, parse_edit
from htr.diagnostics.forward import check_text
from htr.diagnostics.plots import plot_edits, plot_relevance, plot_shift
from htr.diagnostics.relevance import relevance
from htr.diagnostics.shift import periodic_amplitude, periodicity, shift_sweep

PROG = "python -m htr.diagnostics"


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(PlainArgumentParser):
    def error(self, message: str, ex: Exception | None = None) -> None:  # one line, no usage block
        raise UsageError(f"{one_line(self, message)} (see --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Diagnostics of a trained checkpoint on one word image.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp: argparse.ArgumentParser, default_out: str) -> None:
        sp.add_argument("ckpt", help="Lightning checkpoint (.ckpt) of an HTRModule")
        sp.add_argument("image", help="word image file (any format Pillow reads)")
        sp.add_argument("--text", required=True, help="text whose score is examined, e.g. the ground truth")
        sp.add_argument("--out", default=default_out, help=f"figure to write (PNG); default {default_out}")

    e = sub.add_parser("edit", help="score and recognition of the image and edited copies (Fig. 3)")
    common(e, "edits.png")
    e.add_argument("--set", dest="edits", action="append", default=[], metavar="SPEC", help=f"one edit: {SPEC_HELP}; repeatable")
    r = sub.add_parser("relevance", help="pixel relevance map (Fig. 2)")
    common(r, "relevance.png")
    r.add_argument("--window", type=int, default=1)
    r.add_argument("--stride", type=int, default=1)
    r.add_argument("--weights", choices=("uniform", "histogram"), default="uniform")
    r.add_argument("--sampling", choices=("marginal", "conditional"), default="marginal")
    r.add_argument("--vmax", default="0.25", help="colour range (default 0.25 as in the seed) or 'auto'")
    s = sub.add_parser("shift", help="score while shifting the word right (Fig. 5)")
    common(s, "shift.png")
    s.add_argument("--max_shift", "--max-shift", type=int, default=16, help="largest shift (px)")
    return p


def _run(argv: list[str] | None) -> None:
    args = _parser().parse_args(argv)
    from htr.model.module import CheckpointError, load_checkpoint  # Lightning import only when needed

    edits = [parse_edit(spec) for spec in getattr(args, "edits", [])]  # bad specs fail before loading
    image = load_image(args.image)
    try:
        module = load_checkpoint(args.ckpt)
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    canvas = to_canvas(image, module.align)  # placed where this model was trained to read words
    model, charset = module.model, module.charset
    check_text(args.text, charset)
    if args.command == "edit":
        results = edit(model, canvas, args.text, charset, edits)
        width = max(len(r.label) for r in results)
        print(f"{'edit':<{width}}  {'score':>10}  recognised")
        for r in results:
            print(f"{r.label:<{width}}  {r.score:>10.4g}  {r.recognized}")
        fig = plot_edits(results, args.text)
    elif args.command == "relevance":
        vmax = args.vmax if args.vmax == "auto" else float(args.vmax)
        rel = relevance(model, canvas, args.text, charset, args.window, args.stride, args.sampling, weights=args.weights)
        print(f"weight of evidence: min {rel.min():.4g}, max {rel.max():.4g}, positive mass {np.clip(rel, 0, None).sum():.4g}")
        fig = plot_relevance(canvas, rel, args.text, vmax)
    else:
        sweep = shift_sweep(model, canvas, args.text, charset, args.max_shift)
        print(f"{'shift':>5}  {'score':>10}  recognised")
        for sh, sc, t in zip(sweep.shifts, sweep.scores, sweep.texts):
            print(f"{sh:>5}  {sc:>10.4g}  {t}")
        # The README's periodicity numbers (the same functions as the shortcut scores).
        share, amplitude = periodicity(sweep.log_scores, 4), periodic_amplitude(sweep.log_scores, 4)
        if np.isnan(share) and np.isnan(amplitude):
            print("periodicity of the log-score curve: n/a (needs shifts 0..7 at least: --max_shift 8)")
        else:
            print(f"periodicity of the log-score curve: share of power at 4 px {share:.3f}, 4-px swing {amplitude:.4f} nats")
        fig = plot_shift(sweep, args.text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input)."""
    try:
        _run(argv)
    except (UsageError, ImageError, EditSpecError, ValueError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
