"""Command line: ``python -m htr.diagnostics {edit,relevance,shift} CKPT IMAGE --text TEXT ...``
and ``python -m htr.diagnostics scores CKPT --probes PROBES.npz``.

IMAGE is any word image file; it goes through the project's preprocessing (``load_image`` +
``to_canvas``). CKPT is a checkpoint of the project's CRNN, or, with ``--scorer
package.module:factory`` (or ``path/to/file.py:factory``), whatever that factory takes: it is
called with CKPT and returns a :class:`htr.diagnostics.scorer.TextScorer` (an own model, see
docs/OWN_MODEL.md; words are placed at the left edge). Bad input (missing file, bad edit spec,
characters outside the checkpoint's charset) prints one ``error:`` line and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from htr.argparsing import PlainArgumentParser, float_or, int_at_least, output_file
from htr.data.preprocess import Alignment, load_image, to_canvas
from htr.diagnostics.edits import SPEC_HELP, edit, parse_edit
from htr.diagnostics.plots import plot_edits, plot_relevance, plot_shift
from htr.diagnostics.probes import ProbeSet
from htr.diagnostics.relevance import RELEVANCE_WINDOW, relevance
from htr.diagnostics.scorer import CRNNScorer, TextScorer, check_text
from htr.diagnostics.settings import HELP, DiagnosticsSettings
from htr.diagnostics.shift import periodic_amplitude, periodicity, shift_sweep
from htr.errors import UsageError, run_main

PROG = "python -m htr.diagnostics"


_Parser = PlainArgumentParser  # bad input raises a one-line UsageError (htr.argparsing)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Diagnostics of a trained checkpoint on one word image.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def model_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("ckpt", help="Lightning checkpoint (.ckpt) of an HTRModule, or what --scorer's factory takes")
        sp.add_argument("--scorer", metavar="MODULE:FACTORY", help="an own recognizer: package.module:factory or file.py:factory, called with CKPT, returning a TextScorer")

    def common(sp: argparse.ArgumentParser, default_out: str) -> None:
        model_args(sp)
        sp.add_argument("image", help="word image file (any format Pillow reads)")
        sp.add_argument("--text", required=True, help="text whose score is examined, e.g. the ground truth")
        sp.add_argument("--out", type=output_file("figure"), default=default_out, help=f"figure to write (PNG); default {default_out}")

    e = sub.add_parser("edit", help="score and recognition of the image and edited copies (Fig. 3)")
    common(e, "edits.png")
    e.add_argument("--set", dest="edits", action="append", default=[], metavar="SPEC", help=f"one edit: {SPEC_HELP}; repeatable")
    r = sub.add_parser("relevance", help="pixel relevance map (Fig. 2)")
    common(r, "relevance.png")
    r.add_argument("--window", type=int_at_least(1, 32), default=RELEVANCE_WINDOW, help=HELP["relevance_window"] + f"; default {RELEVANCE_WINDOW}")
    r.add_argument("--stride", type=int_at_least(1), default=None, help=HELP["relevance_stride"])
    r.add_argument("--weights", choices=("uniform", "histogram"), default="uniform")
    r.add_argument("--sampling", choices=("marginal", "conditional"), default="marginal")
    r.add_argument("--vmax", type=float_or("auto"), default="0.25", help="colour range (default 0.25 as in the seed) or 'auto'")
    s = sub.add_parser("shift", help="score while shifting the word right (Fig. 5)")
    common(s, "shift.png")
    s.add_argument("--max_shift", "--max-shift", type=int_at_least(0), default=DiagnosticsSettings.max_shift, help="largest shift (px)")
    sc = sub.add_parser("scores", help="every diagnostic on a probe set: the shortcut scores (JSON)")
    model_args(sc)
    sc.add_argument("--probes", default="docs/results/probes.npz", help="saved probe set (default: the study's)")
    sc.add_argument("--out", default="scores.json", help="JSON to write: the flat scores and per-probe rows; default scores.json")
    for f in dataclasses.fields(DiagnosticsSettings):  # the settings' own names, defaults and help
        if f.name not in ("num_probes", "probe_split"):  # the probe set is given
            sc.add_argument(f"--{f.name}", type=int, default=f.default, help=HELP[f.name])
    return p


def load_scorer(spec: str, ckpt: str) -> TextScorer:
    """The scorer ``factory(ckpt)`` of ``package.module:factory`` or ``path/to/file.py:factory``."""
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise UsageError(f"--scorer {spec!r}: expected package.module:factory or path/to/file.py:factory")
    try:
        if where.endswith(".py"):
            if not Path(where).is_file():
                raise UsageError(f"--scorer: {where}: file not found")
            found = importlib.util.spec_from_file_location(Path(where).stem, where)
            module = importlib.util.module_from_spec(found)
            found.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as err:
        raise UsageError(f"--scorer: cannot import {where} ({err}); run from the folder it is importable from") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise UsageError(f"--scorer: {where} has no callable {name!r}")
    scorer = factory(ckpt)
    if not isinstance(scorer, TextScorer):
        raise UsageError(f"--scorer: {spec}({ckpt!r}) returned a {type(scorer).__name__}, not a TextScorer (an object with charset and score())")
    return scorer


def _model(args: argparse.Namespace) -> tuple[TextScorer, Alignment]:
    """The scorer of CKPT and where its model reads words (an own scorer: at the left edge)."""
    if args.scorer:
        return load_scorer(args.scorer, args.ckpt), "left"
    from htr.model.module import CheckpointError, load_checkpoint  # Lightning import only when needed

    try:
        module = load_checkpoint(args.ckpt)
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    return CRNNScorer.of(module), module.align


def _scores(args: argparse.Namespace) -> None:
    """``scores``: :meth:`DiagnosticsSettings.diagnose` on a saved probe set, printed and written as JSON."""
    settings = DiagnosticsSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DiagnosticsSettings) if hasattr(args, f.name)})
    probes = ProbeSet.load(args.probes)
    scorer, align = _model(args)
    for t in set(probes.texts):
        check_text(t, scorer.charset)
    probes = probes.aligned(align)
    diag = settings.diagnose(scorer, probes)
    flat = diag.to_flat()
    out: dict[str, Any] = {"settings": dataclasses.asdict(settings), "scores": flat, "probes": diag.probe_rows(probes)}
    for k, v in flat.items():
        print(f"{k:<24} {v:.4g}")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


def _run(argv: list[str] | None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "scores":
        return _scores(args)
    edits = [parse_edit(spec) for spec in getattr(args, "edits", [])]  # bad specs fail before loading
    image = load_image(args.image)
    scorer, align = _model(args)
    canvas = to_canvas(image, align)  # placed where this model was trained to read words
    check_text(args.text, scorer.charset)
    if args.command == "edit":
        results = edit(scorer, canvas, args.text, edits)
        width = max(len(r.label) for r in results)
        print(f"{'edit':<{width}}  {'score':>10}  recognised")
        for r in results:
            print(f"{r.label:<{width}}  {r.score:>10.4g}  {r.recognized}")
        fig = plot_edits(results, args.text)
    elif args.command == "relevance":
        vmax = args.vmax if args.vmax == "auto" else float(args.vmax)
        rel = relevance(scorer, canvas, args.text, args.window, args.stride, args.sampling, weights=args.weights)
        print(f"weight of evidence: min {rel.min():.4g}, max {rel.max():.4g}, positive mass {np.clip(rel, 0, None).sum():.4g}")
        fig = plot_relevance(canvas, rel, args.text, vmax)
    else:
        sweep = shift_sweep(scorer, canvas, args.text, args.max_shift)
        print(f"{'shift':>5}  {'score':>10}  recognised")
        for sh, sc, t in zip(sweep.shifts, sweep.scores, sweep.texts):
            print(f"{sh:>5}  {sc:>10.4g}  {t}")
        # The README's periodicity numbers (the same functions and period as the shortcut scores).
        p = DiagnosticsSettings.period
        share, amplitude = periodicity(sweep.log_scores, p), periodic_amplitude(sweep.log_scores, p)
        if np.isnan(share) and np.isnan(amplitude):
            print(f"periodicity of the log-score curve: n/a (needs shifts 0..{2 * p - 1} at least: --max_shift {2 * p})")
        else:
            print(f"periodicity of the log-score curve: share of power at {p} px {share:.3f}, {p}-px swing {amplitude:.4f} nats")
        fig = plot_shift(sweep, args.text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when done; bad input raises an ``HTRError`` (``htr.errors.run_main``: one line, exit 2)."""
    _run(argv)
    return 0


if __name__ == "__main__":
    run_main(main, prog=PROG, log_level=logging.WARNING)
