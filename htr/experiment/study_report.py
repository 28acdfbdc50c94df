"""The study's results: per-run files -> mean ± sd per arm -> Markdown table, figures, HTML page.

Reads only what the study runner wrote under ``<results>/runs/`` (``<arm>-s<seed>.json`` and
``.npz``), so a report can be made on any machine from the committed results.
"""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from htr.diagnostics.probes import ProbeSet
from htr.diagnostics.scores import ShortcutScores, flat_key, mean_periodic_amplitude
from htr.diagnostics.settings import DiagnosticsSettings
from htr.diagnostics.specks import N_SPECKS
from htr.experiment.figures import (
    CER,
    COUNT,
    MINUTES,
    NATS,
    PERCENT,
    POINTS,
    SHARE,
    ShiftCurves,
    Unit,
    accuracy_vs_shift,
    format_mean_sd,
    html_page,
    html_table,
    markdown_rows,
    relevance_grid,
    save_figures,
    settings_list,
)
from htr.io import atomic_write_bytes

Table = dict[str, dict[str, tuple[float, float, int]]]


@dataclass(frozen=True)
class Column:
    header: str
    unit: Unit
    definition: str


MAX_ACC_DROP = "diag/max_acc_drop"  # the study's own number: the worst accuracy loss at any shift


def diag_key(diag: DiagnosticsSettings, name: str, shift: int | None = None) -> str:
    """A shortcut score's key in the study's table: ``diag/`` + its flat key under the settings."""
    return "diag/" + flat_key(name, diag.shift_threshold, diag.period, shift)


def headline(diag: DiagnosticsSettings) -> dict[str, Column]:
    """Every number of the study: header, unit (the results log's, docs/RESULTS.md), definition; the shortcut scores
    keyed and described with the diagnostics settings' shift threshold, period and shift range."""
    t, p, top = diag.shift_threshold, diag.period, diag.max_shift
    return {
        "test/cer": Column("CER test", CER, "character error rate on the test split (new writers of the training fonts), %"),
        "test/wer": Column("WER test", PERCENT, "word error rate on the test split, %"),
        "test/acc": Column("acc test", PERCENT, "word accuracy on the test split, %"),
        "test_unseen/cer": Column("CER held-out fonts", CER, "CER on test_unseen (writers of the held-out font families), %"),
        "test+noise/cer": Column("CER test+noise", PERCENT, "CER on the test split with test-time noise augmentation, %"),
        "real_words/read": Column("real words read (of 8)", COUNT, "real handwritten words (data/real-words, SimpleHTR's samples) read exactly, of 8"),
        "real_words/cer": Column("CER real words", CER, "CER on the 8 real handwritten words, %"),
        "test+noise/cer_increase": Column("CER cost of noise (points)", POINTS, "CER with test-time noise minus clean CER, percentage points"),
        diag_key(diag, "accuracy", 0): Column(
            "probe acc @0 px", PERCENT, "word accuracy of the probe words where the model's preprocessing puts them (left edge, x = 0; centred for the centred arm), %",
        ),
        diag_key(diag, "accuracy_drop"): Column(
            f"acc drop @>={t} px (points)", POINTS, f"probe accuracy at 0 px minus the mean over right shifts of {t}..{top} px from where the word sits (translation shortcut), points",
        ),
        MAX_ACC_DROP: Column(f"worst drop 0..{top} px (points)", POINTS, f"largest loss of probe accuracy at any shift 0..{top} px, points"),
        diag_key(diag, "periodicity"): Column(f"{p}-px share", SHARE, f"share of the detrended log-score curve's power at period {p} px (the CNN's down-sampling), 0..1"),
        diag_key(diag, "periodic_amplitude"): Column(f"{p}-px swing (nats)", NATS, f"amplitude of that period-{p} component of the log-score, nats"),
        diag_key(diag, "off_ink_evidence"): Column("off-ink evidence", SHARE, "share of positive relevance more than 2 px from any ink (background shortcut), 0..1"),
        diag_key(diag, "cer_increase_specks"): Column("CER cost of specks (points)", POINTS, f"probe CER with {N_SPECKS} dark specks on the paper minus clean probe CER, points"),
        diag_key(diag, "aopc"): Column("AOPC", SHARE, "deletion-curve area over the perturbation curve: score lost as the most relevant pixels go (higher: the map finds what matters)"),
        "training/final_val_cer": Column("final val CER", CER, "validation CER after the last epoch, %"),
        "training/epochs_run": Column("epochs", COUNT, "training epochs run"),
        "training/wall_time_s": Column("training time", MINUTES, "training wall time, minutes; no mean for an arm whose runs trained on different devices (each run's: the training table)"),
    }


def readme_columns(diag: DiagnosticsSettings) -> list[str]:
    """The table docs/RESULTS.md quotes, in its column order (docs/results/README.md writes it first)."""
    return [
        "test/cer", "test_unseen/cer", "real_words/read", diag_key(diag, "accuracy", 0), diag_key(diag, "accuracy_drop"), MAX_ACC_DROP,
        diag_key(diag, "periodicity"), diag_key(diag, "periodic_amplitude"), diag_key(diag, "off_ink_evidence"), "test+noise/cer_increase",
        diag_key(diag, "cer_increase_specks"), diag_key(diag, "aopc"),
    ]


def fmt(cell: tuple[float, float, int] | None, column: Column | None = None) -> str:
    """``mean ± sd`` in the number's unit (plain 3 decimals for a number without a column)."""
    return format_mean_sd(cell, column.unit if column is not None else Unit(1, 3, ""))


def run_name(arm: str, seed: int, epochs: int | None = None) -> str:
    """``augmented-s2``; a budget-check run trained for ``epochs`` instead of the recipe's: ``augmented-s0-e16``."""
    return f"{arm}-s{seed}" + (f"-e{epochs}" if epochs is not None else "")


@dataclass(frozen=True)
class BudgetCheck:
    """Is the recipe's training budget enough? Each of ``arms`` is trained again for ``epochs``
    (``--trainer.max_epochs``) at each of ``seeds``, as run ``<arm>-s<seed>-e<epochs>`` beside its
    recipe run ``<arm>-s<seed>``. The recipe's budget suffices for an arm if, from the recipe run to
    the longer one, every CER moves by at most ``cer_points`` percentage points and every shortcut
    score by at most that arm's sd over the study's seeds (:func:`budget_comparisons`), or over the
    seeds of the study in ``sd_results`` (a results folder: a study run at one seed borrows the seed
    spread of one run at several)."""

    epochs: int
    arms: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    cer_points: float = 0.3
    sd_results: str | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> BudgetCheck | None:
        """The study config's ``budget_check`` block (a parsed namespace), or None where there is none."""
        spec = getattr(cfg, "budget_check", None)
        return None if spec is None else cls(**{k: getattr(spec, k) for k in cls.__dataclass_fields__})

    def runs(self) -> list[tuple[str, int]]:
        """(arm, seed) of every longer run, in the order they are trained."""
        return [(arm, seed) for seed in self.seeds for arm in self.arms]


def study_runs(cfg: Any) -> list[tuple[str, str]]:
    """(arm, run name) of every run of the study config, arm by arm (its recipe runs, seed by
    seed), then the budget-check runs."""
    runs = [(arm, run_name(arm, seed)) for arm in cfg.arms for seed in cfg.seeds]
    check = BudgetCheck.from_config(cfg)
    return runs + ([(arm, run_name(arm, seed, check.epochs)) for arm, seed in check.runs()] if check else [])


def flat(result: dict[str, Any], splits: list[str], noise_split: str, diag: DiagnosticsSettings, shift_scores: np.ndarray | None = None) -> dict[str, float]:
    """The numbers the study aggregates, from one run's results (and its NPZ's shift curves)."""
    row: dict[str, float] = {}
    extra = [k for k, v in result.items() if isinstance(v, dict) and "cer" in v and k not in splits]
    for split in [*splits, *extra]:
        if split in result:
            for k in ("cer", "wer", "acc", "read"):
                if k in result[split]:
                    row[f"{split}/{k}"] = float(result[split][k])
    row.update(training_numbers(result.get("training", {})))
    if noise_split in result and f"{noise_split}+noise" in result:
        # The noise's own cost: arms differ in clean CER, so noisy CER alone mixes both.
        row[f"{noise_split}+noise/cer_increase"] = float(result[f"{noise_split}+noise"]["cer"]) - float(result[noise_split]["cer"])
    scores = ShortcutScores.from_flat(result["diagnostics"], diag.shift_threshold, diag.period)
    if math.isnan(scores.periodic_amplitude) and shift_scores is not None:  # results made before the score existed
        scores = dataclasses.replace(scores, periodic_amplitude=mean_periodic_amplitude(shift_scores, diag.period))
    row.update({f"diag/{k}": v for k, v in scores.to_flat().items()})
    # Worst accuracy loss over all shifts: the "stays within 2 points over 0..max_shift px" test.
    row[MAX_ACC_DROP] = scores.max_accuracy_drop
    return row


def training_numbers(training: dict[str, Any]) -> dict[str, float]:
    """Epochs, wall time and final val CER of a run's training record (its per-epoch val CER: :func:`val_cer_figure`)."""
    return {f"training/{k}": float(training[k]) for k in ("epochs_run", "wall_time_s", "final_val_cer") if training.get(k) is not None}


def load_run(json_path: Path, splits: list[str], noise_split: str, diag: DiagnosticsSettings) -> tuple[dict[str, float], str]:
    """:func:`flat` of a stored run (``<name>.json`` + ``<name>.npz``) and the device it trained on:
    runs of one study may use different machines, so wall times compare only within one."""
    npz = json_path.with_suffix(".npz")
    shift_scores = np.load(npz)["shift_scores"] if npz.is_file() else None
    result = json.loads(json_path.read_text())
    return flat(result, splits, noise_split, diag, shift_scores), result.get("training", {}).get("device", "?")


def aggregate(cfg: Any) -> dict[str, dict[str, tuple[float, float, int]]]:
    """mean, sd, n per arm and number, over the seeds whose results exist."""
    table: dict[str, dict[str, tuple[float, float, int]]] = {}
    diag = DiagnosticsSettings.from_config(cfg)
    for arm in cfg.arms:
        rows, devices = [], set()
        for seed in cfg.seeds:
            f = Path(cfg.results) / "runs" / f"{run_name(arm, seed)}.json"
            if f.is_file():
                row, device = load_run(f, cfg.splits, cfg.noise_split, diag)
                rows.append(row)
                devices.add(device)
        if not rows:
            continue
        if len(devices) > 1:  # a mean of GPU and CPU wall times describes neither machine
            rows = [{k: v for k, v in r.items() if k != "training/wall_time_s"} for r in rows]
        keys = sorted(set().union(*rows))
        table[arm] = {}
        for k in keys:
            vals = np.array([r[k] for r in rows if k in r and math.isfinite(r[k])])
            table[arm][k] = (float(vals.mean()) if len(vals) else math.nan, float(vals.std(ddof=1)) if len(vals) > 1 else math.nan, int(len(vals)))
    return table


def markdown_table(table: Table, diag: DiagnosticsSettings, keys: list[str] | None = None) -> str:
    """Arms as rows, ``mean ± sd`` (number of seeds); by default the columns docs/RESULTS.md quotes."""
    columns = headline(diag)
    keys = [k for k in (keys or readme_columns(diag)) if any(k in row for row in table.values())]
    rows = [[f"{arm} ({max(c[2] for c in row.values())})", *[fmt(row.get(k), columns[k]) for k in keys]] for arm, row in table.items()]
    return markdown_rows(["arm (seeds)", *[columns[k].header for k in keys]], rows)


def definitions(columns: dict[str, Column], keys: list[str]) -> list[tuple[str, str]]:
    return [(columns[k].header, columns[k].definition) for k in keys]


def html_summary(table: Table, columns: dict[str, Column]) -> str:
    """Numbers as rows, arms as columns, then augmented − baseline and the definition."""
    keys = [k for k in columns if any(k in row for row in table.values())]
    arms = list(table)
    diff = "augmented" in table and "baseline" in table
    rows = []
    for k in keys:
        col = columns[k]
        cells = [fmt(table[a].get(k), col) for a in arms]  # the unit is in the row's label: narrow columns
        if diff:
            delta = _mean(table, "augmented", k) - _mean(table, "baseline", k)
            cells.append(col.unit.difference.fmt(delta, suffix=col.unit.difference.suffix == " points"))  # % - % = points
        rows.append([row_label(col.header, col.unit), *cells, col.definition])
    header = ["number", *[f"{a} ({max(c[2] for c in table[a].values())})" for a in arms], *(["augmented − baseline"] if diff else []), "definition"]
    return html_table(header, rows, wrap=(len(header) - 1,))


def row_label(header: str, unit: Unit) -> str:
    """A number's header as a row label of a table without units in its cells: ``CER test (%)``."""
    return header if "(" in header or unit.suffix != " %" else f"{header} (%)"


def _mean(table: Table, arm: str, key: str) -> float:
    return table.get(arm, {}).get(key, (math.nan, math.nan, 0))[0]


def target_checks(table: Table, diag: DiagnosticsSettings) -> list[tuple[str, str, str]]:
    """The study's expectations if the mission holds: (target, measured, verdict) for the arms present.

    Targets to test, not to tune for: the verdict is printed whatever it is.
    """
    checks: list[tuple[str, str, str]] = []

    def add(target: str, measured: str, ok: bool) -> None:
        checks.append((target, measured, "met" if ok else "NOT met"))

    drop = _mean(table, "baseline", diag_key(diag, "accuracy_drop"))
    if not math.isnan(drop):
        add(f"baseline probe accuracy falls by >= 20 points at shifts >= {diag.shift_threshold} px", f"{100 * drop:.1f} points", drop >= 0.20)
    for arm, what in (("augmented", "augmented"), ("centred", "centred (preprocessing alone, no augmentation)")):
        worst = _mean(table, arm, MAX_ACC_DROP)
        if not math.isnan(worst):
            add(f"{what} stays within 2 points of its unshifted accuracy over 0..{diag.max_shift} px", f"worst drop {100 * worst:.1f} points", worst <= 0.02)
    read = _mean(table, "augmented", "real_words/read")
    if not math.isnan(read):
        add("augmented reads >= 6 of the 8 real handwritten words", f"{read:.1f} of 8 (baseline {_mean(table, 'baseline', 'real_words/read'):.1f})", read >= 6)
    p = diag.period
    for key, what in ((diag_key(diag, "periodicity"), f"periodicity share @{p} px"), (diag_key(diag, "periodic_amplitude"), f"{p}-px swing of the log-score (nats)")):
        base = _mean(table, "baseline", key)
        for arm in ("augmented", "blurpool"):
            value = _mean(table, arm, key)
            if not (math.isnan(value) or math.isnan(base)):
                add(f"{what} drops with {arm}", f"{value:.3f} vs baseline {base:.3f}", value < base)
    for key, what in (("test+noise/cer", "CER on noisy test images"), ("test+noise/cer_increase", "CER cost of test-time noise (noisy - clean)")):
        base = _mean(table, "baseline", key)
        for arm in ("noise", "augmented"):
            value = _mean(table, arm, key)
            if not (math.isnan(value) or math.isnan(base)):
                add(f"{what} improves with the {arm} arm", f"{100 * value:.2f} % vs baseline {100 * base:.2f} %", value < base)
    return checks


def run_groups(diag: DiagnosticsSettings) -> dict[str, list[str]]:
    """The per-run tables, split by topic so that each fits a page."""
    return {
        "recognition": ["test/cer", "test/wer", "test/acc", "test_unseen/cer", "test+noise/cer", "test+noise/cer_increase", "real_words/read", "real_words/cer"],
        "shortcuts": [k for k in headline(diag) if k.startswith("diag/")],
        "training": ["training/epochs_run", "training/wall_time_s", "training/final_val_cer"],
    }


def per_run_rows(results: Path, names: list[str], splits: list[str], noise_split: str, diag: DiagnosticsSettings, group: str) -> tuple[list[str], list[list[str]]]:
    """The numbers of one of the :func:`run_groups` of every run of ``names`` that has results, so a
    mean ± sd can be traced back to its seeds; the training group also says where each run trained."""
    keys, columns = run_groups(diag)[group], headline(diag)
    rows = []
    for name in names:
        f = results / "runs" / f"{name}.json"
        if f.is_file():
            row, device = load_run(f, splits, noise_split, diag)
            rows.append([name, *([device] if group == "training" else []), *[fmt((row[k], math.nan, 1), columns[k]) if k in row else "–" for k in keys]])
    return ["run", *(["device"] if group == "training" else []), *[columns[k].header for k in keys]], rows


@dataclass(frozen=True)
class BudgetComparison:
    """One arm and seed at the recipe's budget (``short``) and the budget check's (``long``): each
    number of both runs and how far it may move (NaN: unknown, e.g. the arm has fewer than 2 seeds)."""

    short: str
    long: str
    short_epochs: float
    long_epochs: float
    rows: list[tuple[str, float, float, float]]  # key, value after short_epochs, after long_epochs, tolerance
    missing: list[str]  # numbers one of the two runs lacks (not compared)

    def outside(self) -> list[str]:
        """The numbers that moved by more than their tolerance."""
        return [k for k, short, long, tol in self.rows if all(map(math.isfinite, (short, long, tol))) and abs(long - short) > tol * (1 + 1e-9)]

    def unknown(self) -> list[str]:
        """The numbers that cannot be judged: no tolerance, or a value that is not finite."""
        return [k for k, short, long, tol in self.rows if not all(map(math.isfinite, (short, long, tol)))]


def budget_keys(cfg: Any) -> list[str]:
    """What the budget check compares: the CER of every split and extra set, then the shortcut scores."""
    return [f"{split}/cer" for split in [*cfg.splits, *cfg.extra_sets]] + run_groups(DiagnosticsSettings.from_config(cfg))["shortcuts"]


def budget_comparisons(cfg: Any, table: Table) -> dict[str, list[BudgetComparison]]:
    """Per budget-check arm, its (recipe run, longer run) pairs whose results both exist; CER may move by
    ``cer_points``, a shortcut score by the arm's sd over the study's seeds (``table``; over those of
    ``sd_results`` where the check names one)."""
    check = BudgetCheck.from_config(cfg)
    if check is None:
        return {}
    if check.sd_results is not None:
        spread = copy.copy(cfg)  # the other study's recipe runs, at every seed it has
        spread.results = check.sd_results
        spread.seeds = sorted({int(m.group(1)) for f in (Path(check.sd_results) / "runs").glob("*.json") if (m := re.search(r"-s(\d+)\.json$", f.name))})
        table = aggregate(spread)
    runs = Path(cfg.results) / "runs"
    diag = DiagnosticsSettings.from_config(cfg)
    out: dict[str, list[BudgetComparison]] = {}
    for arm in check.arms:
        out[arm] = []
        for seed in check.seeds:
            short, long = run_name(arm, seed), run_name(arm, seed, check.epochs)
            if not ((runs / f"{short}.json").is_file() and (runs / f"{long}.json").is_file()):
                continue
            a, _ = load_run(runs / f"{short}.json", cfg.splits, cfg.noise_split, diag)
            b, _ = load_run(runs / f"{long}.json", cfg.splits, cfg.noise_split, diag)
            keys = budget_keys(cfg)
            rows = [
                (k, a[k], b[k], check.cer_points / 100 if k.endswith("/cer") else table.get(arm, {}).get(k, (math.nan, math.nan, 0))[1])
                for k in keys if k in a and k in b
            ]
            epochs = [r.get("training/epochs_run", math.nan) for r in (a, b)]
            out[arm].append(BudgetComparison(short, long, epochs[0], epochs[1], rows, [k for k in keys if k not in a or k not in b]))
    return out


def budget_verdicts(cfg: Any, comparisons: dict[str, list[BudgetComparison]]) -> list[list[str]]:
    """Per budget-check arm: arm, runs compared, verdict, what lies outside its tolerance (or why there is no verdict)."""
    check = BudgetCheck.from_config(cfg)
    columns = headline(DiagnosticsSettings.from_config(cfg))
    rows = []
    for arm, pairs in comparisons.items():
        if not pairs:
            rows.append([arm, "–", "not run yet", "no results of " + ", ".join(run_name(arm, s, check.epochs) for s in check.seeds)])
            continue
        compared = "; ".join(f"{c.short} ({c.short_epochs:.0f} epochs) vs {c.long} ({c.long_epochs:.0f} epochs)" for c in pairs)
        short = "/".join(sorted({f"{c.short_epochs:.0f}" for c in pairs}))
        outside = [(c, k) for c in pairs for k in c.outside()]
        unknown = sorted({budget_header(k, columns) for c in pairs for k in c.unknown()})
        if outside:
            verdict, why = f"{short} epochs do NOT suffice", "; ".join(f"{budget_header(k, columns)} {change_text(c, k, columns)}" for c, k in outside)
        elif unknown:
            verdict, why = "cannot tell", f"no tolerance (fewer than 2 recipe seeds with a value) or no value for: {', '.join(unknown)}"
        else:
            verdict, why = f"{short} epochs suffice", "–"
        missing = sorted({budget_header(k, columns) for c in pairs for k in c.missing})
        rows.append([arm, compared, verdict, why + (f" (not compared, missing in a run: {', '.join(missing)})" if missing else "")])
    return rows


def budget_header(key: str, columns: dict[str, Column]) -> str:
    """A budget-check number's name: the report's header, or ``CER <set>`` for an extra set without one."""
    return columns[key].header if key in columns else f"CER {key.split('/')[0]}"


def budget_unit(key: str, columns: dict[str, Column]) -> Unit:
    return columns[key].unit if key in columns else CER


def change_text(comparison: BudgetComparison, key: str, columns: dict[str, Column]) -> str:
    """``+0.45 points (tolerance 0.30)``: the change of one number from the short run to the long one."""
    _, short, long, tol = next(r for r in comparison.rows if r[0] == key)
    unit = budget_unit(key, columns).difference
    return f"{'+' if long >= short else ''}{unit.fmt(long - short)} (tolerance {unit.fmt(tol, suffix=False)})"


def budget_table(comparison: BudgetComparison, columns: dict[str, Column]) -> tuple[list[str], list[list[str]]]:
    """Every number of one (recipe run, longer run) pair: both values, the change, the tolerance, within it or not."""
    header = ["number", f"{comparison.short_epochs:.0f} epochs", f"{comparison.long_epochs:.0f} epochs", "change", "tolerance", "within"]
    rows = []
    for key, short, long, tol in comparison.rows:
        unit = budget_unit(key, columns)
        within = "?" if key in comparison.unknown() else ("NO" if key in comparison.outside() else "yes")
        rows.append([row_label(budget_header(key, columns), unit), unit.fmt(short, suffix=False), unit.fmt(long, suffix=False), unit.difference.fmt(long - short), unit.difference.fmt(tol), within])
    return header, rows


def budget_intro(cfg: Any) -> str:
    """What the budget check is, in one paragraph (or that the study config has none)."""
    check = BudgetCheck.from_config(cfg)
    if check is None:
        return "No budget check in the study config (`budget_check:`): whether the recipe's training budget suffices is not tested."
    seeds = ", ".join(map(str, check.seeds))
    return (
        f"Does the recipe's training budget suffice? The budget check trains {', '.join(check.arms)} (seed {seeds}) for {check.epochs} epochs "
        f"beside their recipe runs (`<arm>-s<seed>-e{check.epochs}`) and compares each pair: the recipe's budget suffices for an arm if every CER "
        f"changes by at most {check.cer_points:.2f} points and every shortcut score by at most the arm's sd over "
        + (f"its recipe seeds in the study of `{check.sd_results}`." if check.sd_results is not None else f"its {len(cfg.seeds)} recipe seeds.")
    )


def val_cer_figure(results: Path, runs: list[tuple[str, str]]) -> Figure | None:
    """Validation CER per epoch of every run with results (log scale), one panel per arm, budget-check
    runs dashed: how far each run still was from flat when it stopped. None if no run has a history."""
    histories: dict[str, dict[str, list[float]]] = {}
    for arm, name in runs:
        f = results / "runs" / f"{name}.json"
        history = json.loads(f.read_text()).get("training", {}).get("val_cer_history") if f.is_file() else None
        if history:
            histories.setdefault(arm, {})[name] = history
    if not histories:
        return None
    cols = min(3, len(histories))
    rows = math.ceil(len(histories) / cols)
    fig = Figure(figsize=(4.4 * cols, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (arm, named) in zip(axes, histories.items()):
        for name, history in named.items():
            longer = re.search(r"-e\d+$", name) is not None  # a budget-check run
            ax.plot(range(1, len(history) + 1), [100 * v for v in history], marker=".", ls="--" if longer else "-", label=name)
        ax.set(title=arm, xlabel="epoch", ylabel="validation CER (%)", yscale="log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    for ax in axes[len(histories):]:
        ax.set_visible(False)
    return fig


def arm_shift_curves(row: dict[str, tuple[float, float, int]], diag: DiagnosticsSettings) -> ShiftCurves:
    """One arm's probe accuracy and mean log-score per shift (mean ± sd over seeds) from its table row."""
    shifts = [s for s in range(diag.max_shift + 1) if diag_key(diag, "accuracy", s) in row]
    cells = {name: [row.get(diag_key(diag, name, s), (math.nan, math.nan, 0)) for s in shifts] for name in ("accuracy", "log_score")}
    mean = {n: np.array([c[0] for c in v], float) for n, v in cells.items()}
    sd = {n: np.nan_to_num(np.array([c[1] for c in v], float)) for n, v in cells.items()}
    return ShiftCurves(np.array(shifts), mean["accuracy"], mean["log_score"], sd["accuracy"], sd["log_score"])


def relevance_figure(results: Path, arms: list[str], seed: int, probes: ProbeSet) -> Figure | None:
    """The relevance maps of one seed's runs (saved in their NPZ), arms side by side; None if there are none."""
    maps = {arm: np.load(f)["relevance"] for arm in arms if (f := results / "runs" / f"{run_name(arm, seed)}.npz").is_file()}
    if not maps or min(len(m) for m in maps.values()) == 0:
        return None
    aligns = {arm: json.loads((results / "runs" / f"{run_name(arm, seed)}.json").read_text())["hparams"].get("align", "left") for arm in maps}
    return relevance_grid(maps, probes, aligns=aligns)


def write_study_report(cfg: Any, table: Table) -> Path:
    """``README.md`` (table), ``study.json`` (all numbers), PNG figures and ``index.html`` in ``cfg.results``."""
    out = Path(cfg.results)
    diag = DiagnosticsSettings.from_config(cfg)
    probes = ProbeSet.load(out / "probes")
    runs = study_runs(cfg)
    columns = headline(diag)
    curves = {arm: arm_shift_curves(row, diag) for arm, row in table.items()}
    figures = {"shift_curves": (accuracy_vs_shift(curves, diag.period), "Probe word accuracy and mean log-score vs shift (mean ± sd over seeds).")}
    rel = relevance_figure(out, list(table), min(cfg.seeds), probes)
    if rel is not None:
        figures["relevance_maps"] = (rel, f"Pixel relevance of the same words under each arm (seed {min(cfg.seeds)}).")
    sections = save_figures(out, figures)
    val_cer = val_cer_figure(out, runs)
    training_figure = {"val_cer": (val_cer, "Validation CER after each epoch of every run (log scale); budget-check runs dashed.")} if val_cer else {}
    training_section = save_figures(out, training_figure)
    atomic_write_bytes(out / "study.json", json.dumps({arm: {k: list(v) for k, v in row.items()} for arm, row in table.items()}, indent=1).encode())
    checks = target_checks(table, diag)
    comparisons = budget_comparisons(cfg, table)
    verdicts = budget_verdicts(cfg, comparisons)
    budget = {f"{c.short} vs {c.long}": budget_table(c, columns) for pairs in comparisons.values() for c in pairs}
    verdict_header = ["arm", "runs compared", "verdict", "outside the tolerance"]
    run_tables = {group: per_run_rows(out, [name for _, name in runs], cfg.splits, cfg.noise_split, diag, group) for group in run_groups(diag)}
    all_keys = [k for k in columns if any(k in row for row in table.values())]
    md = [
        "# Study results", "",
        "Mean ± sd over seeds (number of seeds in brackets); error rates and accuracies in %, their differences in points. "
        "Made by `python study.py`; numbers from the runs in `runs/*.json`. `docs/RESULTS.md` quotes this table.", "",
        markdown_table(table, diag), "", "All numbers:", "", markdown_table(table, diag, all_keys), "",
        "Columns:", "", *[f"- **{h}**: {d}" for h, d in definitions(columns, all_keys)], "",
    ]
    if checks:
        md += ["## Expectations", "", markdown_rows(["target", "measured", "verdict"], [list(c) for c in checks]), ""]
    md += [f"![{name}]({name}.png)\n\n{caption}\n" for name, (_, caption) in figures.items()]
    md += ["## Training budget", "", budget_intro(cfg), ""]
    if verdicts:
        md += [markdown_rows(verdict_header, verdicts), ""]
    for title, (header, rows) in budget.items():
        md += [f"### {title}", "", markdown_rows(header, rows), ""]
    md += [f"![{name}]({name}.png)\n\n{caption}\n" for name, (_, caption) in training_figure.items()]
    md += ["## Every run", ""]
    for group, (header, rows) in run_tables.items():
        md += [f"### {group.capitalize()}", "", markdown_rows(header, rows), ""]
    atomic_write_bytes(out / "README.md", "\n".join(md).encode())
    check = BudgetCheck.from_config(cfg)
    settings = {
        "arms": ", ".join(f"{a} ({c})" for a, c in cfg.arms.items()),
        "seeds": ", ".join(map(str, cfg.seeds)),
        "training arguments": " ".join(cfg.train_args) or "(the configs as they are)",
        "data": ", ".join(f"{k}: {v}" for k, v in cfg.data.items()),
        "probe set": f"{len(probes)} words of the {diag.probe_split} split (seed {diag.seed}), {out / 'probes.npz'}",
        **diag.describe(),
        **({"budget check": f"{', '.join(check.arms)} (seed {', '.join(map(str, check.seeds))}) for {check.epochs} epochs"} if check else {}),
    }
    body = "<h2>Settings</h2>" + settings_list(settings)
    body += "<h2>Results</h2><p>Mean ± sd over seeds (number of seeds in brackets); error rates and accuracies in %, their differences in points.</p>" + html_summary(table, columns)
    if checks:
        body += "<h2>Expectations</h2>" + html_table(["target", "measured", "verdict"], [list(c) for c in checks])
    body += sections + "<h2>Training budget</h2><p>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(budget_intro(cfg))) + "</p>"
    if verdicts:
        body += html_table(verdict_header, verdicts, wrap=(1, 3))
    body += "".join(f"<h3>{html.escape(title)}</h3>" + html_table(header, rows) for title, (header, rows) in budget.items())
    body += training_section + "<h2>Every run</h2>"
    body += "".join(f"<h3>{group.capitalize()}</h3>" + html_table(header, rows) for group, (header, rows) in run_tables.items())
    page = html_page("htr-shortcuts study", body)
    atomic_write_bytes(out / "index.html", page.encode())
    return out / "index.html"
