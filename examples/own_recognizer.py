"""An own recognizer through the project's diagnostics (docs/OWN_MODEL.md).

``RGBRecognizer`` is laid out unlike the project's CRNN: it takes 3-channel input normalised
with ImageNet's mean/std, returns (frames, batch, classes) *logits* (no log_softmax) and keeps
the CTC blank as its *last* class. It is trained briefly here (450 steps, ~10-30 s on one CPU
core; seeded, so every run trains the same model) on words rendered with Pillow's own font
and placed by the project's preprocessing at the left edge, as IAM places them; then wrapped in
a :class:`htr.diagnostics.CTCScorer` that says all of that, and diagnosed like the shipped models:
its shift sweep, a relevance map and the shortcut scores land in ``--out`` (with the weights and
the probe set, for the command line below).

    python examples/own_recognizer.py --out reports/own_recognizer
    python -m htr.diagnostics shift reports/own_recognizer/model.pt docs/results/examples/are.png \\
        --text are --scorer examples.own_recognizer:load_scorer --out reports/own_recognizer/are_shift.png

(The second command uses :func:`load_scorer`, the factory ``--scorer`` calls with the model path.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere: the htr package beside it

from htr.data.preprocess import to_canvas  # noqa: E402
from htr.diagnostics import CTCScorer, DiagnosticsSettings, ProbeSet, plot_relevance, plot_shift  # noqa: E402

CHARSET = "abcdefghijklmnopqrstuvwxyz"
WORDS = (
    "are the and for was his not but had one all her she him may out its any who can now see our two way "
    "day get has new old set man men war few did say let end how use own put far run top air eye"
).split()
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet's: what an RGB backbone expects
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """The model's own input normalisation, on (B, 3, H, W) in 0..1."""
    return (x - MEAN.to(x.device)) / STD.to(x.device)


class RGBRecognizer(nn.Module):
    """(B, 3, 32, 128) normalised RGB -> (T=32, B, classes) logits; blank = the last class.

    Small on purpose (~30 k parameters, the input halved first) so that it trains in seconds."""

    def __init__(self, num_classes: int = len(CHARSET) + 1) -> None:
        super().__init__()

        def block(cin: int, cout: int, pool: tuple[int, int] | None) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), *([nn.MaxPool2d(pool)] if pool else [])]

        self.cnn = nn.Sequential(
            nn.AvgPool2d(2), *block(3, 8, None), *block(8, 16, (2, 2)), *block(16, 32, (2, 1)),  # 16 x 64 -> 8 x 32 -> 4 x 32
            nn.Conv2d(32, 32, (4, 1)), nn.BatchNorm2d(32), nn.ReLU(),  # 1 x 32: one frame per 4 px
        )
        self.rnn = nn.GRU(32, 32, bidirectional=True)  # time-major, like the output
        self.out = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.rnn(self.cnn(x).squeeze(2).permute(2, 0, 1))
        return self.out(seq)


def make_scorer(model: nn.Module) -> CTCScorer:
    """Everything the diagnostics need to know about this model's layout, in one call."""
    return CTCScorer(model, CHARSET, blank=-1, layout="TBC", outputs="logits", channels=3, normalize=imagenet_normalize)


def load_scorer(path: str) -> CTCScorer:
    """The factory of ``python -m htr.diagnostics ... --scorer examples.own_recognizer:load_scorer``."""
    model = RGBRecognizer()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return make_scorer(model.eval())


def render(word: str, rng: np.random.Generator) -> np.ndarray:
    """A word in Pillow's font (random size, paper and ink gray), as the project's 32x128 canvas (left-aligned)."""
    font = ImageFont.load_default(size=int(rng.integers(20, 34)))
    left, top, right, bottom = font.getbbox(word)
    im = Image.new("L", (right - left + 8, bottom - top + 8), int(rng.integers(215, 250)))
    ImageDraw.Draw(im).text((4 - left, 4 - top), word, fill=int(rng.integers(0, 70)), font=font)
    return to_canvas(np.asarray(im))


def words_set(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = [WORDS[int(i)] for i in rng.integers(0, len(WORDS), n)]
    return texts, np.stack([render(t, rng) for t in texts])


def train(steps: int, seed: int = 0, batch: int = 32) -> RGBRecognizer:
    """CTC training with the blank last (the model's own convention), on a fixed pool of rendered words."""
    torch.manual_seed(seed)
    texts, canvases = words_set(640, seed)
    x_all = imagenet_normalize((torch.as_tensor(canvases, dtype=torch.float32)[:, None] / 255).repeat(1, 3, 1, 1))
    targets = [torch.tensor([CHARSET.index(c) for c in t]) for t in texts]  # class i = CHARSET[i]; blank = 26
    model = RGBRecognizer()
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-2)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        idx = torch.randint(0, len(texts), (batch,), generator=gen)
        log_probs = model(x_all[idx]).log_softmax(-1)
        loss = F.ctc_loss(
            log_probs, torch.cat([targets[i] for i in idx]), torch.full((batch,), log_probs.shape[0]),
            torch.tensor([len(targets[i]) for i in idx]), blank=len(CHARSET), zero_infinity=True,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:4d}  CTC loss {loss.item():.3f}")
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports/own_recognizer", help="folder for the figures, scores.json and model.pt")
    p.add_argument("--steps", type=int, default=450, help="training steps (0: an untrained but seeded model)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny batches: one is fastest)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = train(args.steps)
    torch.save(model.state_dict(), out / "model.pt")
    scorer = make_scorer(model)

    # Held-out renders (another seed), placed at the left edge like the training words.
    texts, canvases = words_set(16, seed=1)
    probes = ProbeSet([f"w{i}" for i in range(len(texts))], texts, canvases)
    probes.save(out / "probes.npz")  # for python -m htr.diagnostics scores ... --probes (words this charset can spell)
    diag = DiagnosticsSettings(relevance_probes=1, relevance_window=4).diagnose(scorer, probes)
    sweep = diag.sweeps[0]
    print(f"\nshift sweep of {texts[0]!r}:\n{'shift':>5}  {'score':>8}  reading")
    for s, score, reading in zip(sweep.shifts, sweep.scores, sweep.texts):
        print(f"{s:>5}  {score:>8.4f}  {reading}")
    plot_shift(sweep, texts[0]).savefig(out / "shift.png", dpi=120)
    plot_relevance(probes.canvases[0], diag.relevance_maps[0], texts[0]).savefig(out / "relevance.png", dpi=120)
    scores = diag.scores
    (out / "scores.json").write_text(json.dumps({"scores": diag.to_flat(), "probes": diag.probe_rows(probes)}, indent=1))
    print(
        f"\nprobe accuracy {scores.accuracy_at(0):.2f} unshifted, drop at shifts >= {scores.shift_threshold} px {scores.accuracy_drop:+.2f}; "
        f"{scores.period}-px periodicity {scores.periodicity:.2f}; CER {scores.specks.clean:.3f} clean, {scores.specks.specks:.3f} with specks; "
        f"off-ink evidence {scores.off_ink_evidence:.2f}; AOPC {scores.aopc:.2f}"
    )
    print(f"wrote {out}/shift.png, relevance.png, scores.json, model.pt, probes.npz in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
