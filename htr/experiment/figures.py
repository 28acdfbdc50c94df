"""Figures and tables of the reports (checkpoint comparison and study): one place for each.

Numbers are shown in the units of the reports and docs/RESULTS.md (:class:`Unit`); figures are matplotlib Figures that
:func:`save_figures` writes as PNG and embeds in a self-contained HTML page (:func:`html_page`).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from htr.diagnostics.plots import SEED_VMAX  # noqa: E402
from htr.diagnostics.probes import Diagnosis, ProbeSet  # noqa: E402
from htr.diagnostics.scores import ShortcutScores  # noqa: E402

# ---------------------------------------------------------------- numbers and tables


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


# The units of the reports and docs/RESULTS.md: error rates and accuracies in percent, their differences in points.
CER = Unit(100, 2, " %")
PERCENT = Unit(100, 1, " %")
POINTS = Unit(100, 1, " points")
SHARE = Unit(1, 2, "")
NATS = Unit(1, 3, " nats")
COUNT = Unit(1, 1, "")
MINUTES = Unit(1 / 60, 1, " min")  # of a value in seconds
RECOGNITION = {"cer": ("CER", CER), "wer": ("WER", PERCENT), "acc": ("word accuracy", PERCENT)}

def format_mean_sd(cell: tuple[float, float, int] | None, unit: Unit, suffix: bool = False) -> str:
    """``mean ± sd`` of a (mean, sd, n) cell in ``unit`` (no sd from a single value; – for none)."""
    if cell is None or math.isnan(cell[0]):
        return "–"
    mean, sd, n = cell
    return unit.fmt(mean, sd if n >= 2 else None, suffix=suffix)


def markdown_rows(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|---" * len(header) + "|", *["| " + " | ".join(r) + " |" for r in rows]])


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
td:first-child,th:first-child,td:last-child,th:last-child{{text-align:left}}dl.settings{{display:grid;grid-template-columns:max-content auto;gap:2px 1em}}dl.settings dd{{margin:0}}
table.text td,table.text th{{text-align:left}}
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


def settings_list(settings: dict[str, Any]) -> str:
    """The evaluation settings as a definition list (probe set, relevance window, seed ...)."""
    items = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in settings.items())
    return f'<dl class="settings">{items}</dl>'



# ---------------------------------------------------------------- figures


def relevance_grid(
    maps: Mapping[str, Sequence[np.ndarray]], probes: ProbeSet, titles: Mapping[str, Sequence[str]] | None = None, vmax: float = SEED_VMAX,
    aligns: Mapping[str, str] | None = None,
) -> Figure:
    """Relevance of the same words (rows) under each model or arm (columns), one colour scale.

    ``titles[name][i]`` labels probe ``i`` of column ``name`` (default: ``name: 'text'``);
    ``aligns[name]`` places column ``name``'s words as that model read them (default: as ``probes``).
    """
    names = list(maps)
    rows = min(len(m) for m in maps.values())
    fig = Figure(figsize=(3.2 * len(names) + 0.6, 1.25 * max(rows, 1) + 0.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(max(rows, 1), len(names), squeeze=False))
    im = None
    for j, name in enumerate(names):
        canvases = probes.aligned((aligns or {}).get(name, probes.align)).canvases  # type: ignore[arg-type]
        for i in range(rows):
            ax = axes[i, j]
            ax.imshow(canvases[i], cmap="gray", vmin=0, vmax=255)
            im = ax.imshow(maps[name][i], cmap="bwr", vmin=-vmax, vmax=vmax, alpha=0.6)
            ax.set_title(titles[name][i] if titles else f"{name}: {probes.texts[i]!r}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    if im is not None:
        fig.colorbar(im, ax=axes, orientation="horizontal", fraction=0.05, label="weight of evidence (log2 odds; red: for, blue: against)")
    return fig


@dataclass
class ShiftCurves:
    """Probe-set word accuracy and mean log-score per shift of one model (sd: over seeds, if any)."""

    shifts: np.ndarray
    acc: np.ndarray
    logscore: np.ndarray
    acc_sd: np.ndarray | None = None
    logscore_sd: np.ndarray | None = None

    @classmethod
    def of(cls, scores: ShortcutScores) -> ShiftCurves:
        """One model's curves from its shortcut scores."""
        return cls(np.array(list(scores.shifts)), np.array(scores.accuracy, float), np.array(scores.log_score, float))


def accuracy_vs_shift(curves: Mapping[str, ShiftCurves], period: int) -> Figure:
    """Word accuracy and mean log-score of the probe set vs shift, one line per model (± sd band where
    known); x ticks every ``period`` px (the pooling phase the curves swing with)."""
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax_acc, ax_log = fig.subplots(1, 2)
    longest = 1
    for name, c in curves.items():
        for ax, mean, sd in ((ax_acc, c.acc, c.acc_sd), (ax_log, c.logscore, c.logscore_sd)):
            ax.plot(c.shifts, mean, marker=".", label=name)
            if sd is not None:
                ax.fill_between(c.shifts, mean - sd, mean + sd, alpha=0.15)
        longest = max(longest, len(c.shifts))
    ax_acc.set(xlabel="shift right (px)", ylabel="probe word accuracy", ylim=(-0.02, 1.02))
    ax_log.set(xlabel="shift right (px)", ylabel="mean log p(text | image)")
    for ax in (ax_acc, ax_log):
        ax.grid(alpha=0.3)
        ax.set_xticks(range(0, longest, period))
    ax_acc.legend(fontsize=8)
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
        ax.set_xticks(range(0, int(max(len(d.sweeps[i].shifts) for d in diagnoses)), diagnoses[0].scores.period))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("p(text | image)")
    axes[-1].legend(fontsize=8)
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


def word_cer(reading: str, truth: str) -> float:
    """Character error rate of one reading (torchmetrics, as every CER of the project)."""
    from torchmetrics.functional.text import char_error_rate

    return float(char_error_rate(reading, truth))


def worst_read_strip(texts: Sequence[str], canvases: np.ndarray, readings: Mapping[str, Sequence[str]], count: int = 12, columns: int = 4) -> Figure:
    """The ``count`` words the models read worst (mean CER over the models, then the first in the
    set), each canvas as the models read it, titled with its true text and every model's reading."""
    names = list(readings)
    mean_cer = [np.mean([word_cer(readings[n][i], t) for n in names]) for i, t in enumerate(texts)]
    worst = sorted(range(len(texts)), key=lambda i: (-mean_cer[i], i))[: min(count, len(texts))]
    rows = max(1, math.ceil(len(worst) / columns))
    fig = Figure(figsize=(3.2 * columns, (0.9 + 0.22 * len(names)) * rows + 0.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, i in zip(axes, worst):
        ax.imshow(canvases[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        lines = [f"true: {texts[i]!r}", *[f"{n}: {readings[n][i]!r}" for n in names]]
        ax.set_title("\n".join(lines), fontsize=8, loc="left")
    return fig
