"""Side-by-side comparison of checkpoints: figures (PNG), tables and one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from htr.diagnostics.plots import SEED_VMAX  # noqa: E402
from htr.diagnostics.probes import Diagnosis, ProbeSet  # noqa: E402
from htr.io import atomic_write_bytes  # noqa: E402



@dataclass(frozen=True)
class Unit:
    """How a number is shown: fractions as percent (``scale`` 100), shares and nats as they are."""

    scale: float
    decimals: int
    suffix: str  # shown after a single value (" %"); tables that name the unit in the header omit it

    def fmt(self, value: float, sd: float | None = None, suffix: bool = True) -> str:
        if value is None or not math.isfinite(value):
            return "–"
        shown = round(self.scale * value, self.decimals) + 0.0  # + 0.0: no "-0.0" for a rounded zero
        text = f"{shown:.{self.decimals}f}"
        if sd is not None and math.isfinite(sd):
            text += f" ± {self.scale * sd:.{self.decimals}f}"
        return text + (self.suffix if suffix else "")

    @property
    def difference(self) -> Unit:
        """The unit of a difference: percent - percent = percentage points."""
        return Unit(self.scale, self.decimals, " points") if self.suffix == " %" else self


# The README's units: error rates and accuracies in percent, their differences in points.
CER = Unit(100, 2, " %")
PERCENT = Unit(100, 1, " %")
POINTS = Unit(100, 1, " points")
SHARE = Unit(1, 2, "")
NATS = Unit(1, 3, " nats")
RECOGNITION = {"cer": ("CER", CER), "wer": ("WER", PERCENT), "acc": ("word accuracy", PERCENT)}

# Scores shown in the comparison table, in this order: unit and what they mean.
TABLE_SCORES: dict[str, tuple[Unit, str]] = {
    "acc@shift0": (PERCENT, "word accuracy of the probes, unshifted"),
    "acc@shift8": (PERCENT, "... shifted right by 8 px"),
    "acc@shift16": (PERCENT, "... by 16 px"),
    "acc_drop@8plus": (POINTS, "acc(0) - mean acc over shifts >= 8 px (translation shortcut)"),
    "logscore_drop@8plus": (NATS, "same for the mean log p(text)"),
    "periodicity@4": (SHARE, "share of the shift curve's power at period 4 px"),
    "periodic_amplitude@4": (NATS, "amplitude of the shift curve's period-4 swing"),
    "off_ink_evidence": (SHARE, "share of positive evidence > 2 px away from ink"),
    "cer@clean": (CER, "CER of the probes"),
    "cer@specks": (CER, "CER with 20 random specks on the paper"),
    "aopc": (SHARE, "deletion-curve AOPC (higher: the map finds what matters)"),
}


def reference_model(names: list[str]) -> str:
    """The model differences are taken against: one named baseline, else the first."""
    return next((n for n in names if "baseline" in n), names[0])


def difference_header(other: str, ref: str) -> str:
    return f"{other} − {ref}"


def relevance_grid(names: list[str], diagnoses: list[Diagnosis], probes: ProbeSet, vmax: float = SEED_VMAX) -> Figure:
    """Relevance of the same words (rows) under each model (columns), one colour scale."""
    rows = min(len(d.relevance_maps) for d in diagnoses)
    fig = Figure(figsize=(3.2 * len(names) + 0.6, 1.25 * max(rows, 1) + 0.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(max(rows, 1), len(names), squeeze=False))
    im = None
    for j, (name, diag) in enumerate(zip(names, diagnoses)):
        for i in range(rows):
            ax = axes[i, j]
            ax.imshow(probes.canvases[i], cmap="gray", vmin=0, vmax=255)
            im = ax.imshow(diag.relevance_maps[i], cmap="bwr", vmin=-vmax, vmax=vmax, alpha=0.6)
            sweep = diag.sweeps[i]
            ax.set_title(f"{name}: p={sweep.scores[0]:.2f} read {sweep.texts[0]!r}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    if im is not None:
        fig.colorbar(im, ax=axes, orientation="horizontal", fraction=0.05, label="weight of evidence (log2 odds; red: for, blue: against)")
    return fig


def shift_overlay(names: list[str], diagnoses: list[Diagnosis], probes: ProbeSet, count: int = 4) -> Figure:
    """Score of the true text vs shift for the first probes, all models overlaid."""
    count = min(count, len(probes))
    fig = Figure(figsize=(4.2 * count, 3.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, count))
    for i, ax in enumerate(axes):
        for name, diag in zip(names, diagnoses):
            s = diag.sweeps[i]
            ax.plot(s.shifts, s.scores, marker=".", label=name)
        ax.set_title(repr(probes.texts[i]), fontsize=9)
        ax.set_xlabel("shift right (px)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(range(0, int(max(len(d.sweeps[i].shifts) for d in diagnoses)), 4))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("p(text | image)")
    axes[-1].legend(fontsize=8)
    return fig


def accuracy_vs_shift(names: list[str], diagnoses: list[Diagnosis]) -> Figure:
    """Word accuracy and mean log score of the whole probe set vs shift, per model."""
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax_acc, ax_log = fig.subplots(1, 2)
    for name, diag in zip(names, diagnoses):
        shifts = sorted(int(k.split("shift")[1]) for k in diag.scores if k.startswith("acc@shift"))
        ax_acc.plot(shifts, [diag.scores[f"acc@shift{s}"] for s in shifts], marker=".", label=name)
        ax_log.plot(shifts, [diag.scores[f"logscore@shift{s}"] for s in shifts], marker=".", label=name)
    ax_acc.set(xlabel="shift right (px)", ylabel="word accuracy", ylim=(-0.02, 1.02))
    ax_log.set(xlabel="shift right (px)", ylabel="mean log p(text | image)")
    for ax in (ax_acc, ax_log):
        ax.grid(alpha=0.3)
        ax.set_xticks(range(0, max(len(shifts), 1), 4))
    ax_acc.legend(fontsize=8)
    return fig


def deletion_overlay(names: list[str], diagnoses: list[Diagnosis]) -> Figure:
    """Mean deletion curve per model: score as the most relevant pixels are replaced."""
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, diag in zip(names, diagnoses):
        if diag.deletions:
            fractions = diag.deletions[0][0]
            mean = np.mean([d[1] for d in diag.deletions], axis=0)
            ax.plot(100 * fractions, mean, marker=".", label=f"{name} (AOPC {np.mean([d[2] for d in diag.deletions]):.2f})")
    # Log-like x axis: the first few pixels are where a faithful map makes the score fall.
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set(xlabel="% pixels replaced (most relevant first; log scale)", ylabel="mean p(text | image)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4f}"
    return html.escape(str(v))


def html_table(header: list[str], rows: list[list[Any]], wrap: tuple[int, ...] = (), text: bool = False) -> str:
    """An HTML table; floats to 4 decimals (NaN as –), everything escaped. Cells never wrap
    (a "21.8 ± 1.4" split over two lines misreads) except in the columns ``wrap`` (prose);
    numbers are right-aligned, a ``text`` table is left-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="wrap">{_fmt(c)}</td>' if j in wrap else f"<td>{_fmt(c)}</td>" for j, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    attrs = ' class="text"' if text else ""
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def save_figures(out: Path, figures: dict[str, tuple[Figure, str]]) -> str:
    """Write each figure as ``out/<name>.png``; return them as HTML figures with the PNG embedded."""
    sections = []
    for name, (fig, caption) in figures.items():
        png = out / f"{name}.png"
        fig.savefig(png, dpi=110)
        data = base64.b64encode(png.read_bytes()).decode()
        sections.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}</figcaption></figure>')
    return "".join(sections)


def html_page(title: str, body: str) -> str:
    """A self-contained page (opens from disk) that tells a headless browser whether its images decoded."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1360px;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td{{white-space:nowrap}}td.wrap{{white-space:normal;min-width:12em}}
td:first-child,th:first-child,td:last-child,th:last-child{{text-align:left}}dl.settings{{display:grid;grid-template-columns:max-content auto;gap:2px 1em}}dl.settings dd{{margin:0}}table.text td,table.text th{{text-align:left}}
img{{max-width:100%}}figure{{margin:2em 0}}figcaption{{color:#555}}</style></head><body>
<h1>{html.escape(title)}</h1>
{body}
<script>/* lets a headless browser check that every figure decoded, no number cell wraps and nothing overflows */
window.addEventListener("load", () => {{ const imgs = [...document.images];
document.body.dataset.imagesTotal = imgs.length;
document.body.dataset.imagesLoaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
const lines = td => {{ const r = document.createRange(); r.selectNodeContents(td);
  return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }};
const cells = [...document.querySelectorAll("td:not(.wrap)")];  /* headers may wrap */
document.body.dataset.cellsChecked = cells.length;
document.body.dataset.wrappedCells = cells.filter(td => lines(td) > 1).length;
document.body.dataset.overflowX = document.documentElement.scrollWidth > document.documentElement.clientWidth; }});</script>
</body></html>"""


PROVENANCE_ROWS = {
    "checkpoint": "checkpoint",
    "augmentation": "augmentation",
    "pooling": "pooling",
    "epochs": "epochs trained",
    "seed": "seed",
    "commit": "code commit",
    "run_name": "training run",
    "wandb_id": "W&B run id",
}


def provenance_table(names: list[str], metrics: dict[str, dict[str, Any]]) -> str:
    """Which checkpoints were compared: one column per model (``unknown`` where an old checkpoint does not say)."""
    prov = {n: metrics[n].get("provenance") or {"checkpoint": metrics[n].get("checkpoint", "unknown")} for n in names}
    rows = [[label, *[str(prov[n].get(key, "unknown")) for n in names]] for key, label in PROVENANCE_ROWS.items()]
    return html_table(["", *names], rows, text=True)


def settings_list(settings: dict[str, Any]) -> str:
    """The evaluation settings as a definition list (probe set, relevance window, seed ...)."""
    items = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in settings.items())
    return f'<dl class="settings">{items}</dl>'


def recognition_rows(names: list[str], metrics: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Split x metric rows, one column per model and one ``model − reference`` column per other model."""
    ref = reference_model(names)
    others = [n for n in names if n != ref]
    splits = list(dict.fromkeys(s for n in names for s, v in metrics[n].items() if isinstance(v, dict) and "cer" in v))
    rows = []
    for split in splits:
        for key, (label, unit) in RECOGNITION.items():
            values = {n: float(metrics[n][split][key]) if split in metrics[n] else math.nan for n in names}
            n_words = next((metrics[n][split]["n"] for n in names if split in metrics[n]), "")
            rows.append([f"{split} ({n_words} words)", label, *[unit.fmt(values[n]) for n in names],
                         *[unit.difference.fmt(values[o] - values[ref]) for o in others]])
    return ["split", "metric", *names, *[difference_header(o, ref) for o in others]], rows


def score_rows(names: list[str], diagnoses: dict[str, Diagnosis]) -> tuple[list[str], list[list[str]]]:
    """Shortcut scores in the README's units, with the differences to the reference model."""
    ref = reference_model(names)
    others = [n for n in names if n != ref]
    rows = []
    for key, (unit, meaning) in TABLE_SCORES.items():
        values = {n: diagnoses[n].scores.get(key, math.nan) for n in names}
        rows.append([key, *[unit.fmt(values[n]) for n in names], *[unit.difference.fmt(values[o] - values[ref]) for o in others], meaning])
    return ["score", *names, *[difference_header(o, ref) for o in others], "meaning"], rows


def write_report(
    out: str | Path,
    metrics: dict[str, dict[str, Any]],
    diagnoses: dict[str, Diagnosis],
    probes: ProbeSet,
    settings: dict[str, Any] | None = None,
    title: str = "htr-shortcuts: checkpoint comparison",
) -> Path:
    """PNG figures + ``index.html`` (images embedded, opens from disk) under ``out``.

    ``metrics[name]`` may hold ``provenance`` (see :mod:`htr.provenance`); ``settings`` are the
    evaluation's settings (probe set, relevance window/stride, seed), shown as they are.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names, diags = list(diagnoses), list(diagnoses.values())
    figures = {
        "relevance_grid": (relevance_grid(names, diags, probes), "Pixel relevance of the same words under each model (prediction difference analysis; red votes for the true text, blue against)."),
        "accuracy_vs_shift": (accuracy_vs_shift(names, diags), "Word accuracy and mean log-score of the probe set as the word is shifted right pixel by pixel."),
        "shift_curves": (shift_overlay(names, diags, probes), "Score of the true text vs shift for single probes (the seed's Fig. 5), models overlaid."),
        "deletion_curves": (deletion_overlay(names, diags), "Deletion curves: the score as the pixels with the most positive evidence are replaced first (1, 2, 4 ... pixels, then even steps)."),
    }
    sections = save_figures(out, figures)
    rec_header, rec_rows = recognition_rows(names, metrics)
    sc_header, sc_rows = score_rows(names, diagnoses)
    settings = {"probe texts": f"{len(probes)} ({', '.join(probes.texts[:12])}{'…' if len(probes) > 12 else ''})", **(settings or {})}
    body = f"""<h2>Models</h2>{provenance_table(names, metrics)}
<h2>Settings</h2>{settings_list(settings)}
<h2>Recognition</h2>{html_table(rec_header, rec_rows)}
<h2>Shortcut scores (probe set)</h2>{html_table(sc_header, sc_rows, wrap=(len(sc_header) - 1,))}
<h2>Figures</h2>{sections}"""
    page = html_page(title, body)
    index = out / "index.html"
    atomic_write_bytes(index, page.encode())
    return index
