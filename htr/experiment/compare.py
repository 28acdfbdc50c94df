"""Side-by-side comparison of checkpoints: figures (PNG), tables and one self-contained HTML page."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from htr.diagnostics.probes import Diagnosis, ProbeSet
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
    titles = {n: [f"{n}: p={s.scores[0]:.2f} read {s.texts[0]!r}" for s in d.sweeps] for n, d in diagnoses.items()}
    maps = {n: d.relevance_maps for n, d in diagnoses.items()}
    curves = {n: ShiftCurves.from_scores(d.scores) for n, d in diagnoses.items()}
    aligns = {n: metrics.get(n, {}).get("hparams", {}).get("align", "left") for n in maps}  # each model's words where it read them
    grid = relevance_grid(maps, probes, titles, aligns=aligns)
    figures = {
        "relevance_grid": (grid, "Pixel relevance of the same words under each model (prediction difference analysis; red votes for the true text, blue against)."),
        "accuracy_vs_shift": (accuracy_vs_shift(curves), "Word accuracy and mean log-score of the probe set as the word is shifted right pixel by pixel."),
        "shift_curves": (shift_overlay(names, diags, probes), "Score of the true text vs shift for single probes (the seed's Fig. 5), models overlaid."),
        "deletion_curves": (deletion_overlay(names, diags), "Deletion curves: the score as the pixels with the most positive evidence are replaced first (1, 2, 4 ... pixels, then even steps)."),
    }
    ref = reference_model(names)
    for set_name, entry in (words or {}).items():
        canvases = entry["canvases"].get(ref, next(iter(entry["canvases"].values())))
        figures[f"worst_read_{set_name}"] = (
            worst_read_strip(entry["texts"], canvases, entry["readings"]),
            f"{set_name}: the words read worst (mean CER over the models), with the true text and each model's reading ({ref}'s canvas).",
        )
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
