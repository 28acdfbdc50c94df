"""The study report: mean ± sd per arm as a Markdown table, figures, and a self-contained HTML page."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from htr.diagnostics.plots import SEED_VMAX  # noqa: E402
from htr.diagnostics.probes import ProbeSet  # noqa: E402
from htr.io import atomic_write_bytes  # noqa: E402
from htr.report import html_page, html_table, save_figures  # noqa: E402

Table = dict[str, dict[str, tuple[float, float, int]]]

# Columns of the headline table: key -> header.
HEADLINE = {
    "test/cer": "CER test",
    "test/wer": "WER test",
    "test/acc": "acc test",
    "test_unseen/cer": "CER unseen fonts",
    "test+noise/cer": "CER test+noise",
    "test+noise/cer_increase": "CER cost of noise",
    "diag/acc@shift0": "probe acc @0",
    "diag/acc_drop@8plus": "acc drop @>=8 px",
    "diag/max_acc_drop": "worst acc drop 0..16 px",
    "diag/periodicity@4": "periodicity share @4 px",
    "diag/periodic_amplitude@4": "4-px swing (nats)",
    "diag/off_ink_evidence": "off-ink evidence",
    "diag/cer_increase@specks": "CER increase (specks)",
    "diag/aopc": "AOPC",
}


def fmt(cell: tuple[float, float, int] | None) -> str:
    if cell is None or math.isnan(cell[0]):
        return "–"
    mean, sd, n = cell
    return f"{mean:.3f}" if n < 2 or math.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def markdown_rows(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|---" * len(header) + "|", *["| " + " | ".join(r) + " |" for r in rows]])


def markdown_table(table: Table) -> str:
    keys = [k for k in HEADLINE if any(k in row for row in table.values())]
    rows = [[f"{arm} ({max(c[2] for c in row.values())})", *[fmt(row.get(k)) for k in keys]] for arm, row in table.items()]
    return markdown_rows(["arm (seeds)", *[HEADLINE[k] for k in keys]], rows)


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
                rows.append([run_name(arm, seed), *[fmt((row[k], math.nan, 1)) if k in row else "–" for k in keys]])
    return ["run", *HEADLINE.values()], rows


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
    md = ["# Study results", "", "Mean ± sd over seeds (number of seeds in brackets). Made by `python study.py`; numbers from the runs in `runs/*.json`.", "", markdown_table(table), ""]
    if checks:
        md += ["## Expectations", "", markdown_rows(["target", "measured", "verdict"], [list(c) for c in checks]), ""]
    md += [f"![{name}]({name}.png)\n\n{caption}\n" for name, (_, caption) in figures.items()]
    md += ["## Every run", "", markdown_rows(run_header, run_rows), ""]
    atomic_write_bytes(out / "README.md", "\n".join(md).encode())
    keys = [k for k in HEADLINE if any(k in row for row in table.values())]
    rows = [[arm, *[fmt(row.get(k)) for k in keys]] for arm, row in table.items()]
    body = html_table(["arm", *[HEADLINE[k] for k in keys]], rows)
    if checks:
        body += "<h2>Expectations</h2>" + html_table(["target", "measured", "verdict"], [list(c) for c in checks])
    body += sections + "<h2>Every run</h2>" + html_table(run_header, run_rows)
    page = html_page("htr-shortcuts study", body)
    atomic_write_bytes(out / "index.html", page.encode())
    return out / "index.html"
