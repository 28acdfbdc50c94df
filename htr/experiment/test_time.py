"""Test-time geometry probes: how a checkpoint's CER on a set moves when its words are reshaped
before the usual preprocessing. They say whether a gap between two sets (synthetic vs real
handwriting) is geometry the model could be taught by data or augmentation, or something else.

    python -m htr.experiment.test_time checkpoints/baseline.ckpt checkpoints/augmented.ckpt \\
        --data.source folder --data.root data/real-handwriting --split all \\
        --stretch '[0.7, 0.85, 1.0, 1.2, 1.45]' --shrink '[1.0, 0.9, 0.8, 0.65]'

``stretch f``: the crop's width times f (letters wider or narrower), then fitted and placed as in
evaluation. ``shrink s``: the fitted word scaled by s (smaller on the canvas, as translate's
shrinking makes it), placed where the model expects words, vertically centred. At 1.0 both are
exactly the evaluation's canvas, so the row at 1.0 is the CER that ``evaluate.py`` reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torchmetrics.text import CharErrorRate

from htr.argparsing import ArgumentParser
from htr.data.preprocess import BACKGROUND, crop_to_canvas, fit_word, load_crop, normalize, place, word_x
from htr.diagnostics.scores import ink_mask
from htr.errors import ConfigError, run_main
from htr.experiment.evaluate import checkpoint_name, eval_data, resolve_device
from htr.io import write_json
from htr.model.module import HTRModule, load_checkpoint

log = logging.getLogger("htr.test_time")

Reshape = Callable[[np.ndarray, float, str], np.ndarray]  # (contrast-normalised crop, factor, align) -> canvas


def stretched(crop: np.ndarray, factor: float, align: str = "left") -> np.ndarray:
    """The crop ``factor`` times as wide (same height), as a canvas."""
    h, w = crop.shape
    if factor != 1.0:
        crop = cv2.resize(crop, (max(1, round(w * factor)), h), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    return crop_to_canvas(crop, align)


def shrunk(crop: np.ndarray, scale: float, align: str = "left") -> np.ndarray:
    """The fitted word scaled by ``scale`` (<= 1), as a canvas."""
    word = fit_word(crop)
    if scale != 1.0:
        h, w = word.shape
        word = cv2.resize(word, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return place(word, word_x(word.shape[1], align))


RESHAPES: dict[str, tuple[Reshape, tuple[float, float]]] = {  # name -> (reshape, allowed factors)
    "stretch": (stretched, (0.25, 4.0)),
    "shrink": (shrunk, (0.1, 1.0)),
}


def check_factors(name: str, factors: Sequence[float]) -> None:
    low, high = RESHAPES[name][1]
    bad = [f for f in factors if not low <= f <= high]
    if bad:
        raise ConfigError(name, f"factors {bad} outside {low}..{high}")


def letter_proportions(crops: list[np.ndarray], texts: list[str]) -> dict[str, float]:
    """Width per letter over height of each word's ink box (ink: darker than mid-gray in a contrast-
    normalised crop): quartiles over the set, to compare two sets' letter widths directly."""
    ratios = []
    for crop, text in zip(crops, texts):
        ys, xs = np.nonzero(ink_mask(crop, ink_threshold=BACKGROUND - 128))
        if len(xs) and text:
            ratios.append((xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1) / len(text))
    if not ratios:
        return {}
    q25, median, q75 = np.quantile(ratios, [0.25, 0.5, 0.75])
    return {"q25": float(q25), "median": float(median), "q75": float(q75)}


def read_canvases(module: HTRModule, canvases: list[np.ndarray], device: str = "cpu", batch_size: int = 256) -> list[str]:
    """What ``module`` reads on each canvas (its own decoder)."""
    module.eval().to(device)
    readings: list[str] = []
    with torch.no_grad():
        for i in range(0, len(canvases), batch_size):
            readings += module.predict_texts(normalize(np.stack(canvases[i : i + batch_size])).to(device))
    return readings


def probe(module: HTRModule, crops: list[np.ndarray], texts: list[str], reshapes: dict[str, Sequence[float]], device: str = "cpu") -> dict[str, dict[str, float]]:
    """CER of ``module`` on the words reshaped by each (reshape, factor): ``{"stretch": {"1.2": cer}}``."""
    out: dict[str, dict[str, float]] = {}
    for name, factors in reshapes.items():
        reshape = RESHAPES[name][0]
        out[name] = {}
        for factor in factors:
            readings = read_canvases(module, [reshape(c, factor, module.align) for c in crops], device)
            out[name][f"{factor:g}"] = float(CharErrorRate()(readings, texts))
    return out


def cer_table(results: dict[str, dict[str, Any]]) -> str:
    """One block per reshape: a row per checkpoint (its word count), a column per factor (CER %)."""
    blocks = []
    first = next(iter(results.values()))["cer"]
    for reshape, by_factor in first.items():
        head = f"{reshape + ' (CER %)':<32}" + "".join(f"{'x' + f:>8}" for f in by_factor)
        lines = [head, "-" * len(head)]
        for name, r in results.items():
            label = f"{name} ({r['n']} words)"
            lines.append(f"{label:<32}" + "".join(f"{100 * c:>8.2f}" for c in r["cer"][reshape].values()))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m htr.experiment.test_time", description=__doc__)
    p.add_argument("checkpoints", nargs="+", help="checkpoints to probe")
    p.add_argument("--data", type=dict[str, Any], default={"source": "folder", "root": "data/real-handwriting"}, help="the set's data settings, as evaluate.py's --data.*")
    p.add_argument("--split", type=str, default="all", help="split of that data (a folder of only labels.tsv: all)")
    p.add_argument("--limit", type=int, default=0, help="first N words only (0: all)")
    p.add_argument("--stretch", type=list[float], default=[0.7, 0.85, 1.0, 1.2, 1.45], help="width factors")
    p.add_argument("--shrink", type=list[float], default=[1.0, 0.9, 0.8, 0.65], help="scale factors of the fitted word")
    p.add_argument("--device", type=str, default="auto")
    p.add_argument("--out", type=Path | None, default=None, help="write the CERs as JSON here")
    return p


def main(args: list[str] | None = None) -> int:
    cfg = build_parser().parse_args(args)
    reshapes = {"stretch": cfg.stretch, "shrink": cfg.shrink}
    for name, factors in reshapes.items():
        check_factors(name, factors)
    if cfg.limit < 0:
        raise ConfigError("limit", f"{cfg.limit} is negative; use 0 for all words")
    device = resolve_device(cfg.device)
    results: dict[str, Any] = {"data": dict(cfg.data), "split": cfg.split, "checkpoints": {}}
    for path in cfg.checkpoints:
        module = load_checkpoint(path)
        data = eval_data(cfg.data, module, num_workers=0)
        data.prepare_data(splits=(cfg.split,))
        samples = data.splits().get(cfg.split)
        if not samples:
            raise ConfigError("split", f"no usable word in split {cfg.split!r} of {cfg.data.get('root')} for {path}")
        samples = samples[: cfg.limit] if cfg.limit else samples
        name = checkpoint_name(path)
        crops, texts = [load_crop(s.path) for s in samples], [s.text for s in samples]
        results.setdefault("letter_proportions", letter_proportions(crops, texts))
        cer = probe(module, crops, texts, reshapes, device)
        results["checkpoints"][name] = {"path": str(path), "n": len(samples), "cer": cer}
    shape = results["letter_proportions"]
    if shape:
        print(f"ink width per letter / ink height: median {shape['median']:.3f} (quartiles {shape['q25']:.3f}-{shape['q75']:.3f})\n")
    print(cer_table(results["checkpoints"]))
    if cfg.out:
        write_json(cfg.out, results)
        log.info("wrote %s", cfg.out)
    return 0


if __name__ == "__main__":
    run_main(main, prog="python -m htr.experiment.test_time")
