"""Side-by-side comparison of checkpoints: figures (PNG), tables and one self-contained HTML page."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from htr.diagnostics.probes import Diagnosis, ProbeSet
from htr.diagnostics.scores import ShortcutScores
from htr.diagnostics.specks import N_SPECKS
from htr.experiment.figures import (
    CER,
    NATS,
    PERCENT,
    POINTS,
    RECOGNITION,
    SHARE,
    ShiftCurves,
    Unit,
    accuracy_vs_shift,
    deletion_overlay,
    html_page,
    html_table,
    relevance_grid,
    save_figures,
    settings_list,
    shift_overlay,
    worst_read_strip,
)
from htr.io import atomic_write_bytes
from htr.text import error_counts


def table_scores(ref: ShortcutScores) -> list[tuple[str, Callable[[ShortcutScores], float | None], Unit, str]]:
    """The scores of the comparison table, in this order: (flat key as the row label, the score
    of a model, unit, meaning), with the shifts and period of the reference model's scores."""
    t, p, top = ref.shift_threshold, ref.period, ref.shifts[-1]
    return [
        (ref.key("accuracy", 0), lambda s: s.accuracy_at(0), PERCENT, "word accuracy of the probes, unshifted"),
        (ref.key("accuracy", t), lambda s: s.accuracy_at(t), PERCENT, f"... shifted right by {t} px"),
        (ref.key("accuracy", top), lambda s: s.accuracy_at(top), PERCENT, f"... by {top} px"),
        (ref.key("accuracy_drop"), lambda s: s.accuracy_drop, POINTS, f"acc(0) - mean acc over shifts >= {t} px (translation shortcut)"),
        (ref.key("log_score_drop"), lambda s: s.log_score_drop, NATS, "same for the mean log p(text)"),
        (ref.key("periodicity"), lambda s: s.periodicity, SHARE, f"share of the shift curve's power at period {p} px"),
        (ref.key("periodic_amplitude"), lambda s: s.periodic_amplitude, NATS, f"amplitude of the shift curve's period-{p} swing"),
        (ref.key("off_ink_evidence"), lambda s: s.off_ink_evidence, SHARE, "share of positive evidence > 2 px away from ink"),
        (ref.key("cer_clean"), lambda s: s.specks.clean, CER, "CER of the probes"),
        (ref.key("cer_specks"), lambda s: s.specks.specks, CER, f"CER with {N_SPECKS} random specks on the paper"),
        (ref.key("aopc"), lambda s: s.aopc, SHARE, "deletion-curve AOPC (higher: the map finds what matters)"),
    ]


def reference_model(names: list[str]) -> str:
    """The model differences are taken against: one named baseline, else the first."""
    return next((n for n in names if "baseline" in n), names[0])


def difference_header(other: str, ref: str) -> str:
    return f"{other} − {ref}"


PROVENANCE_ROWS = {
    "checkpoint": "checkpoint",
    "augmentation": "augmentation",
    "pooling": "pooling",
    "epochs": "epochs trained",
    "seed": "seed",
    "commit": "code commit",
    "run_name": "training run",
    "wandb_id": "W&B run id",
    "weights": "weights (SHA-256, first 12)",
}


def provenance_table(names: list[str], metrics: dict[str, dict[str, Any]]) -> str:
    """Which checkpoints were compared: one column per model (``unknown`` where an old checkpoint does not say)."""
    prov = {n: metrics[n].get("provenance") or {"checkpoint": metrics[n].get("checkpoint", "unknown")} for n in names}
    rows = [[label, *[str(prov[n].get(key, "unknown")) for n in names]] for key, label in PROVENANCE_ROWS.items()]
    return html_table(["", *names], rows, text=True)


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


def edit_label(edit: tuple[str, str]) -> str:
    """One character error as the report writes it: ``a → n``, ``e left out``, ``i added``."""
    truth, read = edit
    return f"{truth} → {read}" if truth and read else f"{truth} left out" if truth else f"{read} added"


def error_rows(names: list[str], texts: list[str], readings: dict[str, list[str]], top: int = 10) -> tuple[list[str], list[list[str]]]:
    """Each model's most frequent character errors on one set (count and share of its errors), and
    how its errors split into substitutions, letters left out and letters added."""
    counts = {n: error_counts(texts, readings[n]) for n in names if n in readings}
    rows = []
    for kind, test in (("substituted", lambda e: e[0] and e[1]), ("left out", lambda e: not e[1]), ("added", lambda e: not e[0])):
        rows.append([kind, *[str(sum(c for e, c in counts[n].items() if test(e))) for n in counts]])
    ranked = {n: [f"{edit_label(e)}: {c} ({100 * c / c_all.total():.0f} %)" for e, c in c_all.most_common(top)] for n, c_all in counts.items()}
    for rank in range(max(map(len, ranked.values()), default=0)):
        rows.append([f"#{rank + 1}", *[cells[rank] if rank < len(cells) else "" for cells in ranked.values()]])
    return ["errors", *counts], rows


def score_rows(names: list[str], diagnoses: dict[str, Diagnosis]) -> tuple[list[str], list[list[str]]]:
    """Shortcut scores in the units of the reports and docs/RESULTS.md, with the differences to the reference model."""
    ref = reference_model(names)
    others = [n for n in names if n != ref]
    rows = []
    for key, score, unit, meaning in table_scores(diagnoses[ref].scores):
        values = {n: _value(score(diagnoses[n].scores)) for n in names}
        rows.append([key, *[unit.fmt(values[n]) for n in names], *[unit.difference.fmt(values[o] - values[ref]) for o in others], meaning])
    return ["score", *names, *[difference_header(o, ref) for o in others], "meaning"], rows


def _value(v: float | None) -> float:
    return math.nan if v is None else v


def write_report(
    out: str | Path,
    metrics: dict[str, dict[str, Any]],
    diagnoses: dict[str, Diagnosis],
    probes: ProbeSet,
    settings: dict[str, Any] | None = None,
    title: str = "htr-shortcuts: checkpoint comparison",
    words: dict[str, Any] | None = None,
) -> Path:
    """PNG figures + ``index.html`` (images embedded, opens from disk) under ``out``.

    ``metrics[name]`` may hold ``provenance`` (see :mod:`htr.provenance`); ``settings`` are the
    evaluation's settings (probe set, relevance window/stride, seed), shown as they are.
    ``words[set]`` (``texts``, ``canvases`` and ``readings`` per model, as
    :func:`htr.experiment.evaluate.evaluate_all` gives them) adds a strip of each set's worst-read words.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names, diags = list(diagnoses), list(diagnoses.values())
    ref = reference_model(names)
    titles = {n: [f"{n}: p={s.scores[0]:.2f} read {s.texts[0]!r}" for s in d.sweeps] for n, d in diagnoses.items()}
    maps = {n: d.relevance_maps for n, d in diagnoses.items()}
    curves = {n: ShiftCurves.of(d.scores) for n, d in diagnoses.items()}
    aligns = {n: metrics.get(n, {}).get("hparams", {}).get("align", "left") for n in maps}  # each model's words where it read them
    grid = relevance_grid(maps, probes, titles, aligns=aligns)
    figures = {
        "relevance_grid": (grid, "Pixel relevance of the same words under each model (prediction difference analysis; red votes for the true text, blue against)."),
        "accuracy_vs_shift": (accuracy_vs_shift(curves, diagnoses[ref].scores.period), "Word accuracy and mean log-score of the probe set as the word is shifted right pixel by pixel."),
        "shift_curves": (shift_overlay(names, diags, probes), "Score of the true text vs shift for single probes (the seed's Fig. 5), models overlaid."),
        "deletion_curves": (deletion_overlay(names, diags), "Deletion curves: the score as the pixels with the most positive evidence are replaced first (1, 2, 4 ... pixels, then even steps)."),
    }
    for set_name, entry in (words or {}).items():
        canvases = entry["canvases"].get(ref, next(iter(entry["canvases"].values())))
        figures[f"worst_read_{set_name}"] = (
            worst_read_strip(entry["texts"], canvases, entry["readings"]),
            f"{set_name}: the words read worst (mean CER over the models), with the true text and each model's reading ({ref}'s canvas).",
        )
    sections = save_figures(out, figures)
    rec_header, rec_rows = recognition_rows(names, metrics)
    sc_header, sc_rows = score_rows(names, diagnoses)
    errors = "".join(
        f"<h3>{html.escape(set_name)}</h3>{html_table(*error_rows(names, entry['texts'], entry['readings']), text=True)}" for set_name, entry in (words or {}).items()
    )
    if errors:
        errors = "<h2>Character errors (real sets; true → read, over one minimal alignment)</h2>" + errors
    settings = {"probe texts": f"{len(probes)} ({', '.join(probes.texts[:12])}{'…' if len(probes) > 12 else ''})", **(settings or {})}
    body = f"""<h2>Models</h2>{provenance_table(names, metrics)}
<h2>Settings</h2>{settings_list(settings)}
<h2>Recognition</h2>{html_table(rec_header, rec_rows)}
{errors}
<h2>Shortcut scores (probe set)</h2>{html_table(sc_header, sc_rows, wrap=(len(sc_header) - 1,))}
<h2>Figures</h2>{sections}"""
    page = html_page(title, body)
    index = out / "index.html"
    atomic_write_bytes(index, page.encode())
    return index
