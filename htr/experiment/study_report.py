"""The study report: mean ± sd per arm as a Markdown table, figures, and a self-contained HTML page."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from htr.diagnostics.plots import SEED_VMAX  # noqa: E402
from htr.diagnostics.probes import ProbeSet  # noqa: E402
from htr.io import atomic_write_bytes  # noqa: E402
from htr.report import NATS, PERCENT, POINTS, SHARE, Unit, html_page, html_table, save_figures, settings_list  # noqa: E402

Table = dict[str, dict[str, tuple[float, float, int]]]



@dataclass(frozen=True)
class Column:
    header: str
    unit: Unit
    definition: str


# Every number of the study: header, unit (the README's), definition.
HEADLINE: dict[str, Column] = {
    "test/cer": Column("CER test", PERCENT, "character error rate on the test split (fonts seen in training), %"),
    "test/wer": Column("WER test", PERCENT, "word error rate on the test split, %"),
    "test/acc": Column("acc test", PERCENT, "word accuracy on the test split, %"),
    "test_unseen/cer": Column("CER unseen fonts", PERCENT, "CER on test_unseen (held-out fonts), %"),
    "test+noise/cer": Column("CER test+noise", PERCENT, "CER on the test split with test-time noise augmentation, %"),
    "test+noise/cer_increase": Column("CER cost of noise (points)", POINTS, "CER with test-time noise minus clean CER, percentage points"),
    "diag/acc@shift0": Column("probe acc @0 px", PERCENT, "word accuracy of the probe words as they are (x = 0), %"),
    "diag/acc_drop@8plus": Column("acc drop @>=8 px (points)", POINTS, "probe accuracy at 0 px minus the mean over shifts 8..16 px (translation shortcut), points"),
    "diag/max_acc_drop": Column("worst drop 0..16 px (points)", POINTS, "largest loss of probe accuracy at any shift 0..16 px, points"),
    "diag/periodicity@4": Column("4-px share", SHARE, "share of the detrended log-score curve's power at period 4 px (the CNN's down-sampling), 0..1"),
    "diag/periodic_amplitude@4": Column("4-px swing (nats)", NATS, "amplitude of that period-4 component of the log-score, nats"),
    "diag/off_ink_evidence": Column("off-ink evidence", SHARE, "share of positive relevance more than 2 px from any ink (background shortcut), 0..1"),
    "diag/cer_increase@specks": Column("CER cost of specks (points)", POINTS, "probe CER with 20 dark specks on the paper minus clean probe CER, points"),
    "diag/aopc": Column("AOPC", SHARE, "deletion-curve area over the perturbation curve: score lost as the most relevant pixels go (higher: the map finds what matters)"),
}
# The table the README quotes, in its column order (docs/results/README.md writes it first).
README_COLUMNS = [
    "test/cer", "test_unseen/cer", "diag/acc@shift0", "diag/acc_drop@8plus", "diag/max_acc_drop", "diag/periodicity@4",
    "diag/periodic_amplitude@4", "diag/off_ink_evidence", "test+noise/cer_increase", "diag/cer_increase@specks", "diag/aopc",
]


def fmt(cell: tuple[float, float, int] | None, key: str | None = None, suffix: bool = False) -> str:
    """``mean ± sd`` in the number's unit (plain 3 decimals for keys without one)."""
    if cell is None or math.isnan(cell[0]):
        return "–"
    mean, sd, n = cell
    unit = HEADLINE[key].unit if key in HEADLINE else Unit(1, 3, "")
    return unit.fmt(mean, sd if n >= 2 else None, suffix=suffix)


def markdown_rows(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|---" * len(header) + "|", *["| " + " | ".join(r) + " |" for r in rows]])


def markdown_table(table: Table, keys: list[str] | None = None) -> str:
    """Arms as rows, ``mean ± sd`` (number of seeds); by default the README's columns."""
    keys = [k for k in (keys or README_COLUMNS) if any(k in row for row in table.values())]
    rows = [[f"{arm} ({max(c[2] for c in row.values())})", *[fmt(row.get(k), k) for k in keys]] for arm, row in table.items()]
    return markdown_rows(["arm (seeds)", *[HEADLINE[k].header for k in keys]], rows)


def definitions(keys: list[str]) -> list[tuple[str, str]]:
    return [(HEADLINE[k].header, HEADLINE[k].definition) for k in keys]


def html_summary(table: Table) -> str:
    """Numbers as rows, arms as columns, then augmented − baseline and the definition."""
    keys = [k for k in HEADLINE if any(k in row for row in table.values())]
    arms = list(table)
    diff = "augmented" in table and "baseline" in table
    rows = []
    for k in keys:
        col = HEADLINE[k]
        cells = [fmt(table[a].get(k), k) for a in arms]  # the unit is in the row's label: narrow columns
        if diff:
            delta = _mean(table, "augmented", k) - _mean(table, "baseline", k)
            cells.append(col.unit.difference.fmt(delta, suffix=col.unit.difference.suffix == " points"))  # % - % = points
        label = col.header if "(" in col.header or col.unit.suffix != " %" else f"{col.header} (%)"
        rows.append([label, *cells, col.definition])
    header = ["number", *[f"{a} ({max(c[2] for c in table[a].values())})" for a in arms], *(["augmented − baseline"] if diff else []), "definition"]
    return html_table(header, rows, wrap=(len(header) - 1,))


def _mean(table: Table, arm: str, key: str) -> float:
    return table.get(arm, {}).get(key, (math.nan, math.nan, 0))[0]


def target_checks(table: Table) -> list[tuple[str, str, str]]:
    """The study's expectations if the mission holds: (target, measured, verdict) for the arms present.

    Targets to test, not to tune for: the verdict is printed whatever it is.
    """
    checks: list[tuple[str, str, str]] = []

    def add(target: str, measured: str, ok: bool) -> None:
        checks.append((target, measured, "met" if ok else "NOT met"))

    drop = _mean(table, "baseline", "diag/acc_drop@8plus")
    if not math.isnan(drop):
        add("baseline probe accuracy falls by >= 20 points at shifts >= 8 px", f"{100 * drop:.1f} points", drop >= 0.20)
    worst = _mean(table, "augmented", "diag/max_acc_drop")
    if not math.isnan(worst):
        add("augmented stays within 2 points of its unshifted accuracy over 0..16 px", f"worst drop {100 * worst:.1f} points", worst <= 0.02)
    for key, what in (("periodicity@4", "periodicity share @4 px"), ("periodic_amplitude@4", "4-px swing of the log-score (nats)")):
        base = _mean(table, "baseline", f"diag/{key}")
        for arm in ("augmented", "blurpool"):
            value = _mean(table, arm, f"diag/{key}")
            if not (math.isnan(value) or math.isnan(base)):
                add(f"{what} drops with {arm}", f"{value:.3f} vs baseline {base:.3f}", value < base)
    for key, what in (("test+noise/cer", "CER on noisy test images"), ("test+noise/cer_increase", "CER cost of test-time noise (noisy - clean)")):
        base = _mean(table, "baseline", key)
        for arm in ("noise", "augmented"):
            value = _mean(table, arm, key)
            if not (math.isnan(value) or math.isnan(base)):
                add(f"{what} improves with the {arm} arm", f"{100 * value:.2f} % vs baseline {100 * base:.2f} %", value < base)
    return checks


def per_run_rows(results: Path, arms: list[str], seeds: list[int], splits: list[str], noise_split: str) -> tuple[list[str], list[list[str]]]:
    """Every run's headline numbers, so a mean ± sd can be traced back to its seeds."""
    from htr.study import load_flat, run_name

    keys = list(HEADLINE)
    rows = []
    for arm in arms:
        for seed in seeds:
            f = results / "runs" / f"{run_name(arm, seed)}.json"
            if f.is_file():
                row = load_flat(f, splits, noise_split)
                rows.append([run_name(arm, seed), *[fmt((row[k], math.nan, 1), k) if k in row else "–" for k in keys]])
    return ["run", *[c.header for c in HEADLINE.values()]], rows


def shift_figure(table: Table, max_shift: int) -> Figure:
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    ax_acc, ax_log = fig.subplots(1, 2)
    shifts = np.arange(max_shift + 1)
    for arm, row in table.items():
        for ax, key in ((ax_acc, "acc"), (ax_log, "logscore")):
            cells = [row.get(f"diag/{key}@shift{s}", (math.nan, math.nan, 0)) for s in shifts]
            mean = np.array([c[0] for c in cells])
            sd = np.nan_to_num(np.array([c[1] for c in cells]))
            ax.plot(shifts, mean, marker=".", label=arm)
            ax.fill_between(shifts, mean - sd, mean + sd, alpha=0.15)
    ax_acc.set(xlabel="shift right (px)", ylabel="probe word accuracy", ylim=(-0.02, 1.02))
    ax_log.set(xlabel="shift right (px)", ylabel="mean log p(text | image)")
    for ax in (ax_acc, ax_log):
        ax.set_xticks(shifts[::4])
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8)
    return fig


def relevance_figure(results: Path, arms: list[str], seed: int, probes: ProbeSet, vmax: float = SEED_VMAX) -> Figure | None:
    maps = {}
    for arm in arms:
        f = results / "runs" / f"{arm}-s{seed}.npz"
        if f.is_file():
            maps[arm] = np.load(f)["relevance"]
    if not maps:
        return None
    rows = min(len(m) for m in maps.values())
    if rows == 0:
        return None
    fig = Figure(figsize=(2.9 * len(maps) + 0.5, 1.2 * rows + 0.9), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, len(maps), squeeze=False))
    im = None
    for j, (arm, m) in enumerate(maps.items()):
        for i in range(rows):
            ax = axes[i, j]
            ax.imshow(probes.canvases[i], cmap="gray", vmin=0, vmax=255)
            im = ax.imshow(m[i], cmap="bwr", vmin=-vmax, vmax=vmax, alpha=0.6)
            ax.set_title(f"{arm}: {probes.texts[i]!r}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(im, ax=axes, orientation="horizontal", fraction=0.05, label="weight of evidence (log2 odds; red: for, blue: against)")
    return fig


def write_study_report(cfg: Any, table: Table) -> Path:
    """``README.md`` (table), ``study.json`` (all numbers), PNG figures and ``index.html`` in ``cfg.results``."""
    out = Path(cfg.results)
    probes = ProbeSet.load(out / "probes")
    figures = {"shift_curves": (shift_figure(table, cfg.max_shift), "Probe word accuracy and mean log-score vs shift (mean ± sd over seeds).")}
    rel = relevance_figure(out, list(table), min(cfg.seeds), probes)
    if rel is not None:
        figures["relevance_maps"] = (rel, f"Pixel relevance of the same words under each arm (seed {min(cfg.seeds)}).")
    sections = save_figures(out, figures)
    atomic_write_bytes(out / "study.json", json.dumps({arm: {k: list(v) for k, v in row.items()} for arm, row in table.items()}, indent=1).encode())
    checks = target_checks(table)
    run_header, run_rows = per_run_rows(out, list(cfg.arms), cfg.seeds, cfg.splits, cfg.noise_split)
    all_keys = [k for k in HEADLINE if any(k in row for row in table.values())]
    md = [
        "# Study results", "",
        "Mean ± sd over seeds (number of seeds in brackets); error rates and accuracies in %, their differences in points. "
        "Made by `python study.py`; numbers from the runs in `runs/*.json`. The main README quotes this table.", "",
        markdown_table(table), "", "All numbers:", "", markdown_table(table, all_keys), "",
        "Columns:", "", *[f"- **{h}**: {d}" for h, d in definitions(all_keys)], "",
    ]
    if checks:
        md += ["## Expectations", "", markdown_rows(["target", "measured", "verdict"], [list(c) for c in checks]), ""]
    md += [f"![{name}]({name}.png)\n\n{caption}\n" for name, (_, caption) in figures.items()]
    md += ["## Every run", "", markdown_rows(run_header, run_rows), ""]
    atomic_write_bytes(out / "README.md", "\n".join(md).encode())
    settings = {
        "arms": ", ".join(f"{a} ({c})" for a, c in cfg.arms.items()),
        "seeds": ", ".join(map(str, cfg.seeds)),
        "training arguments": " ".join(cfg.train_args) or "(the configs as they are)",
        "data": ", ".join(f"{k}: {v}" for k, v in cfg.data.items()),
        "probe set": f"{len(probes)} words of the val split (seed 0), {out / 'probes.npz'}",
        "relevance": f"{cfg.relevance_window}x{cfg.relevance_window} windows every {cfg.relevance_stride} px, first {cfg.relevance_probes} probes",
        "shift sweep": f"0..{cfg.max_shift} px",
    }
    body = "<h2>Settings</h2>" + settings_list(settings)
    body += "<h2>Results</h2><p>Mean ± sd over seeds (number of seeds in brackets); error rates and accuracies in %, their differences in points.</p>" + html_summary(table)
    if checks:
        body += "<h2>Expectations</h2>" + html_table(["target", "measured", "verdict"], [list(c) for c in checks])
    body += sections + "<h2>Every run</h2>" + html_table(run_header, run_rows)
    page = html_page("htr-shortcuts study", body)
    atomic_write_bytes(out / "index.html", page.encode())
    return out / "index.html"
