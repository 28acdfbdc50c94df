"""Pixel relevance speed: naive (full forward per perturbed image) vs fast (incremental CNN).

    python bench/relevance.py [--threads 1] [--pooling max] [--skip-naive-w1] [--batch-size 512]

One 32x128 word canvas ("are" in PIL's default font, IAM-style left-aligned) and the real CRNN
with random weights (80 classes). Prints seconds per map and the speedup for

* the seed's setting: gray levels {0, 63, 127, 191, 255}, uniform weights, window 1 stride 1
  (full resolution) and 4x4 windows with stride 4 and 2;
* one replacement value (gray 0), the same windows, with Captum's ``FeatureAblation``
  (baseline 0, one feature per window) as a third column when ``import captum`` works
  (captum is not a dependency of the project; the column is skipped otherwise).

It also checks that fast and naive agree (max |difference| of the WE maps).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from htr.data.preprocess import to_canvas
from htr.diagnostics.probes import ProbeSet
from htr.diagnostics.relevance import make_perturbations, relevance, window_positions
from htr.diagnostics.scorer import CRNNScorer
from htr.diagnostics.settings import DiagnosticsSettings
from htr.model.crnn import CRNN
from htr.text import IAM_CHARSET, Charset, text_log_score


def word_canvas(text: str = "are") -> np.ndarray:
    font = ImageFont.load_default(size=28)
    left, top, right, bottom = font.getbbox(text)
    im = Image.new("L", (right - left + 8, bottom - top + 8), 240)
    ImageDraw.Draw(im).text((4 - left, 4 - top), text, fill=30, font=font)
    return to_canvas(np.asarray(im))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def captum_map(scorer, canvas, text, window, stride, value, batch_size):
    """Captum FeatureAblation with the same windows (non-overlapping only) and one replacement."""
    from captum.attr import FeatureAblation

    if stride != window and window_positions(128, window, stride) != list(range(0, 128 - window + 1, window)):
        return None
    h, w = canvas.shape
    mask = np.zeros((h, w), dtype=np.int64)
    for i, y in enumerate(window_positions(h, window, window)):
        for j, x in enumerate(window_positions(w, window, window)):
            mask[y : y + window, x : x + window] = i * w + j
    x = torch.as_tensor(canvas, dtype=torch.float32)[None, None] / 255

    def forward(images: torch.Tensor) -> torch.Tensor:
        return text_log_score(scorer.model(images), [text], scorer.charset)

    with torch.inference_mode():
        attr = FeatureAblation(forward).attribute(
            x, baselines=value / 255, feature_mask=torch.as_tensor(mask)[None, None], perturbations_per_eval=batch_size
        )
    return attr[0, 0].numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--pooling", default="max", choices=("max", "blur"))
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--skip-naive-w1", action="store_true", help="skip the slowest run (naive, 5 levels, window 1)")
    p.add_argument("--callback-only", action="store_true", help="only time the diagnostics of 8 probes (what a callback runs)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    charset = Charset(IAM_CHARSET)
    torch.manual_seed(0)
    model = CRNNScorer(CRNN(charset.num_classes, pooling=args.pooling).eval(), charset)
    canvas = word_canvas()
    try:
        import captum  # noqa: F401

        have_captum = True
    except ImportError:
        have_captum = False
        print("captum not installed: Captum column skipped (pip install captum==0.9.0 to measure it)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, pooling={args.pooling}, batch {args.batch_size}")
    print(f"{'setting':<34} {'evals':>6} {'naive s':>8} {'fast s':>8} {'speedup':>7} {'captum s':>8} {'max|diff|':>9}")
    settings = [
        ("seed 5 levels, w1 s1", dict(window=1, stride=1)),
        ("seed 5 levels, w4 s4", dict(window=4, stride=4)),
        ("seed 5 levels, w4 s2", dict(window=4, stride=2)),
        ("1 level (0), w1 s1", dict(window=1, stride=1, gray_levels=(0,))),
        ("1 level (0), w4 s4", dict(window=4, stride=4, gray_levels=(0,))),
    ]
    if args.callback_only:
        settings = []
    for name, kw in settings:
        pert = make_perturbations(canvas, **kw)
        gray = canvas.astype(np.float64)
        evals = sum(
            int(not np.array_equal(v, gray[y0:y1, x0:x1])) for (y0, y1, x0, x1), vals in zip(pert.windows, pert.values) for v in vals
        )
        kw["eps"] = 1e-300  # a random model's p(text) is tiny: keep the WE map informative for the diff
        t_fast, fast = timed(relevance, model, canvas, "are", method="fast", batch_size=args.batch_size, **kw)
        if args.skip_naive_w1 and kw["window"] == 1 and "gray_levels" not in kw:
            t_naive, diff = float("nan"), float("nan")
        else:
            t_naive, naive = timed(relevance, model, canvas, "are", method="naive", batch_size=args.batch_size, **kw)
            diff = float(np.abs(fast - naive).max())
        t_captum = float("nan")
        if have_captum and "gray_levels" in kw:
            t_captum, _ = timed(captum_map, model, canvas, "are", kw["window"], kw["stride"], kw["gray_levels"][0], args.batch_size)
        print(f"{name:<34} {evals:>6} {t_naive:>8.2f} {t_fast:>8.2f} {t_naive / t_fast:>7.2f} {t_captum:>8.2f} {diff:>9.2g}", flush=True)
    callback_cost(model)


def callback_cost(scorer: CRNNScorer) -> None:
    """What a training callback pays: the diagnostics of 8 probes, with and without relevance (and deletion curves)."""
    words = ["are", "the", "to", "and", "tell", "of", "it", "word"]
    probes = ProbeSet(words, words, np.stack([word_canvas(w) for w in words]))
    print(f"\ndiagnostics of {len(words)} probes (shift sweeps 0..16, specks CER):")
    for n, window in ((0, 2), (8, 4), (8, 2)):
        t, _ = timed(DiagnosticsSettings(relevance_probes=n, relevance_window=window).diagnose, scorer, probes)
        what = f"relevance on {n} probes, window {window} stride {window}" if n else "no relevance"
        print(f"  {what:<45} {t:7.2f} s")


if __name__ == "__main__":
    main()
