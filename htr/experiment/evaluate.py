"""Checkpoint evaluation behind evaluate.py: metrics per checkpoint and split, one table, the
diagnostics of every checkpoint on one probe set and the comparison report."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from tqdm import tqdm

from htr.argparsing import ArgumentParser
from htr.data.datamodule import WordDataModule
from htr.diagnostics import settings as diagnostics_settings
from htr.diagnostics.probes import Diagnosis, ProbeError, ProbeSet
from htr.diagnostics.scorer import CRNNScorer
from htr.diagnostics.settings import DiagnosticsSettings
from htr.errors import ConfigError
from htr.experiment.compare import PROVENANCE_ROWS, write_report
from htr.io import write_json
from htr.model.module import HTRModule, load_checkpoint

log = logging.getLogger("htr.evaluate")

# Real handwriting read in every evaluation (vendored, MIT): name -> {data: WordDataModule settings, split}.
REAL_SETS: dict[str, dict[str, Any]] = {
    "real_handwriting": {"data": {"source": "folder", "root": "data/real-handwriting"}, "split": "all"},
    "real_words": {"data": {"source": "folder", "root": "data/real-words"}, "split": "all"},
}


def checkpoint_name(path: str | Path) -> str:
    """``checkpoints/baseline.ckpt`` -> baseline; ``runs/aug/checkpoints/last.ckpt`` -> aug."""
    path = Path(path)
    if path.stem in ("last",) or path.stem.startswith(("best", "epoch")):
        return path.parent.parent.name or path.stem
    return path.stem


def eval_data(settings: Mapping[str, Any], module: HTRModule | None = None, option: str = "data", **fixed: Any) -> WordDataModule:
    """The data of a config's data settings (evaluate.py's ``--data.*``, the study's ``data:``, an
    extra set's ``data``) as ``module`` reads words: placed by its ``align``, labels outside its
    charset skipped and counted (no module: IAM's charset, left-aligned). ``fixed`` goes over both
    (``num_workers=0``, ``test_augmentation="noise"``, a ``charset``); a bad key or value is named
    as ``option`` has it."""
    model = {"charset": module.charset.chars, "align": module.align} if module is not None else {}
    return WordDataModule.from_settings(settings, option, **{**model, **fixed})


def evaluate_split(module: HTRModule, data: WordDataModule, split: str, device: str = "cpu", progress: bool = True) -> dict[str, float]:
    """CER, WER, word accuracy (corpus level) and n of ``module`` on one split, via its own test_step."""
    trainer = pl.Trainer(
        accelerator=device, devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=progress, enable_model_summary=False,
    )
    data.hparams.test_split = split
    module.test_prefix = split
    # The loader, not the DataModule: Lightning would prepare_data() every split (20k to generate).
    result = trainer.test(module, dataloaders=data.test_dataloader(), verbose=False)[0]
    metrics = {k.split("/", 1)[1]: float(v) for k, v in result.items()}
    metrics["n"] = len(data.splits()[split])
    return metrics


def read_split(module: HTRModule, data: WordDataModule, split: str, device: str = "cpu") -> tuple[list[str], np.ndarray]:
    """Every word of ``split`` as the model reads it (its own decoder), in order, and the canvases it read."""
    data.hparams.test_split = split
    readings, canvases = [], []
    module.eval().to(device)
    with torch.no_grad():
        for batch in data.test_dataloader():
            readings += module.predict_texts(batch["image"].to(device))
            canvases.append((batch["image"][:, 0] * 255).round().to(torch.uint8).numpy())
    return readings, np.concatenate(canvases)


SetWords = tuple[list[str], list[str], np.ndarray]  # true texts, readings, canvases of one set


def evaluate_extra_sets(
    module: HTRModule, extra_sets: dict[str, dict[str, Any]], device: str = "cpu", progress: bool = False, readings: bool = True,
) -> tuple[dict[str, Any], dict[str, SetWords]]:
    """Metrics of ``module`` on each extra set (e.g. real handwriting; a synthetic set is generated
    if missing), with the number of words read exactly; with ``readings``, per set (true texts,
    readings, canvases) for the worst-read strips."""
    metrics: dict[str, Any] = {}
    words: dict[str, SetWords] = {}
    for name, spec in extra_sets.items():
        data = eval_data(spec.get("data", {}), module, f"extra_sets.{name}.data", num_workers=0)
        split = spec.get("split", "all")
        data.prepare_data(splits=(split,))
        if not data.splits().get(split):  # e.g. a model with a small charset: the skipped labels are counted above
            log.warning("%s: no usable word in split %r for this model; set skipped", name, split)
            continue
        metrics[name] = evaluate_split(module, data, split, device, progress)
        metrics[name]["read"] = round(metrics[name]["acc"] * metrics[name]["n"])  # words read exactly
        if readings:
            read, canvases = read_split(module, data, split, device)
            words[name] = ([s.text for s in data.splits()[split]], read, canvases)
    return metrics, words


def check_extra_sets(extra_sets: dict[str, dict[str, Any]], option: str = "extra_sets") -> None:
    """Raise ``ConfigError`` for an extra set with a bad data setting or an unknown key (a typo would
    otherwise read the default split), before any checkpoint loads or trains."""
    for name, spec in extra_sets.items():
        unknown = sorted(set(spec) - {"data", "split"})
        if unknown:
            raise ConfigError(f"{option}.{name}", f"unknown key {', '.join(unknown)}; an extra set has data (WordDataModule settings) and split")
        eval_data(spec.get("data", {}), option=f"{option}.{name}.data")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` where a GPU is visible, else ``cpu``; other names as they are."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ConfigError("device", f"{device!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", f"{device!r}: no CUDA GPU is visible here; use cpu or auto")
    return device


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'checkpoint':<24} {'split':<16} {'CER':>7} {'WER':>7} {'acc':>7} {'n':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['checkpoint']:<24} {r['split']:<16} {r['cer']:>7.4f} {r['wer']:>7.4f} {r['acc']:>7.4f} {r['n']:>7d}")
    return "\n".join(lines)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="evaluate.py", description=__doc__)
    parser.add_argument("checkpoints", nargs="+", type=str, help="checkpoint files (.ckpt)")
    parser.add_argument("--splits", type=list[str], default=["test", "test_unseen"], help="splits to evaluate")
    parser.add_argument(
        "--extra_sets", type=dict[str, dict[str, Any]], default=REAL_SETS,
        help="more sets read by every checkpoint, name: {data: {WordDataModule settings}, split: name} (default: the two real-handwriting sets; {} for none)",
    )
    parser.add_argument("--out", type=str, default="reports/compare", help="report folder (metrics.json)")
    parser.add_argument("--device", type=str, default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--progress", type=bool, default=True, help="progress bars")
    parser.add_argument("--probes", type=str | None, default=None, help="saved probe set (e.g. runs/baseline/diagnostics/probes.npz); default: chosen from --probe_split")
    diagnostics_settings.add_arguments(parser)
    parser.add_argument("--diagnostics", type=bool, default=True, help="run the diagnostics and write the HTML report")
    parser.add_argument("--wandb", type=Literal["offline", "online"] | None, default=None, help="also log the comparison to one W&B run")
    parser.add_argument("--project", type=str, default="htr-shortcuts", help="W&B project of --wandb")
    parser.add_class_arguments(WordDataModule, "data", skip={"charset", "augmentation", "align"})
    return parser


def main(args: list[str] | None = None) -> int:
    """Evaluate and report as the command line says; bad input raises an ``HTRError`` (see ``htr.errors.run_main``)."""
    cfg = build_parser().parse_args(args)
    out = Path(cfg.out)
    settings = DiagnosticsSettings.from_config(cfg)
    # Bad values and files fail here, before the checkpoints load and are evaluated.
    eval_data(vars(cfg.data))
    check_extra_sets(cfg.extra_sets)
    resolve_device(cfg.device)
    if cfg.diagnostics and cfg.probes:
        ProbeSet.load(cfg.probes)
    modules = load_modules(cfg.checkpoints)
    results, rows, words = evaluate_all(cfg, modules)
    print(format_table(rows))
    report_settings = describe(cfg, settings)
    diagnoses = diagnose_and_report(cfg, settings, modules, results, out, report_settings, words) if cfg.diagnostics else {}
    if cfg.wandb:  # with --diagnostics false: the recognition numbers only
        out.mkdir(parents=True, exist_ok=True)
        log_report_to_wandb(out, results, diagnoses, cfg.wandb, cfg.project, report_settings)
    write_json(out / "metrics.json", results)
    log.info("wrote %s", out / "metrics.json")
    return 0


def describe(cfg: Any, settings: DiagnosticsSettings) -> dict[str, Any]:
    """The evaluation's settings as the report and the W&B run show them."""
    return {
        "data": f"{cfg.data.source} at {cfg.data.root}",
        "probe set": cfg.probes or f"{settings.num_probes} words of the {settings.probe_split!r} split (seed {settings.seed})",
        **settings.describe(),
        "seed (probes, specks)": settings.seed,
    }


def load_modules(paths: list[str]) -> dict[str, tuple[str, HTRModule]]:
    """name -> (path, module) of every checkpoint; a repeated name gets a numeric suffix."""
    modules: dict[str, tuple[str, HTRModule]] = {}
    for path in paths:
        name = checkpoint_name(path)
        if name in modules:
            name = f"{name}_{len(modules)}"
        modules[name] = (str(path), load_checkpoint(path))
    return modules




def evaluate_all(cfg: Any, modules: dict[str, tuple[str, HTRModule]]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Metrics of every checkpoint on every split and extra set: (results per model, table rows,
    per extra set the true texts, canvases and every model's readings)."""
    results: dict[str, Any] = {}
    rows = []
    words: dict[str, Any] = {}
    for name, (path, module) in modules.items():
        data = eval_data(vars(cfg.data), module)
        data.prepare_data(splits=list(cfg.splits))
        results[name] = {"checkpoint": path, "hparams": dict(module.hparams), "provenance": module.provenance}
        for split in cfg.splits:
            if split not in data.splits():
                log.warning("%s: no split %r; skipped", cfg.data.root, split)
                continue
            results[name][split] = evaluate_split(module, data, split, cfg.device, cfg.progress)
            rows.append({"checkpoint": name, "split": split, **results[name][split]})
        extra, read = evaluate_extra_sets(module, cfg.extra_sets, cfg.device, cfg.progress)
        for set_name, metrics in extra.items():
            results[name][set_name] = metrics
            rows.append({"checkpoint": name, "split": set_name, **metrics})
            texts, readings, canvases = read[set_name]
            results[name].setdefault("readings", {})[set_name] = readings
            entry = words.setdefault(set_name, {"texts": texts, "canvases": {}, "readings": {}})
            if entry["texts"] == texts:  # models with other charsets read other subsets: the strip shows one
                entry["canvases"][name], entry["readings"][name] = canvases, readings
    return results, rows, words


def diagnose_and_report(
    cfg: Any, settings: DiagnosticsSettings, modules: dict[str, tuple[str, HTRModule]], results: dict[str, Any], out: Path, report_settings: dict[str, Any],
    words: dict[str, Any] | None = None,
) -> dict[str, Diagnosis]:
    """All diagnostics of every checkpoint on one probe set (into ``results`` too) and the HTML report."""
    charsets = [m.charset.chars for _, m in modules.values()]
    probes = load_probes(cfg, settings, "".join(c for c in charsets[0] if all(c in other for other in charsets)))
    diagnoses = {}
    for name, (_, module) in tqdm(modules.items(), desc="diagnostics", disable=not cfg.progress):
        module.to(resolve_device(cfg.device))
        diagnoses[name] = settings.diagnose(CRNNScorer.of(module), probes.aligned(module.align))
        results[name]["diagnostics"] = diagnoses[name].to_flat()
        results[name]["probes"] = diagnoses[name].probe_rows(probes)
    index = write_report(out, results, diagnoses, probes, report_settings, words=words)
    log.info("report: %s", index)
    return diagnoses


def load_probes(cfg: Any, settings: DiagnosticsSettings, charset: str) -> ProbeSet:
    """The saved probe set given by --probes, or the seeded choice the training callback makes,
    from data built for it: the probe split of ``--data.*``, words every model can spell (``charset``)."""
    if cfg.probes:
        return ProbeSet.load(cfg.probes)
    data = eval_data(vars(cfg.data), charset=charset)
    data.prepare_data(splits=[settings.probe_split])
    splits = data.splits()
    if settings.probe_split not in splits:
        raise ProbeError(f"{cfg.data.root}: no split {settings.probe_split!r} to choose probes from (have {', '.join(sorted(splits))})")
    return settings.choose_probes(splits[settings.probe_split])


def log_report_to_wandb(out: Path, results: dict[str, Any], diagnoses: dict[str, Diagnosis], mode: str, project: str, settings: dict[str, Any]) -> str:
    """One W&B comparison run: CER/WER/acc per model and split, shortcut scores, figures, and
    each model's provenance (training run id/name where the checkpoint knows it). Returns its id."""
    import wandb

    prov = {n: r.get("provenance", {}) for n, r in results.items()}
    groups = {p.get("run_group") for p in prov.values()}
    run = wandb.init(
        project=project, name=f"compare-{out.name}", dir=str(out), mode=mode, job_type="evaluation",
        group=groups.pop() if len(groups) == 1 and None not in groups and "unknown" not in groups else None,
        config={"settings": {k: str(v) for k, v in settings.items()}, "models": prov}, tags=["comparison"],
    )
    columns = ["model", "split", "cer", "wer", "acc", "n", "training_run", "training_wandb_id", "checkpoint"]
    rows = [
        [n, split, m["cer"], m["wer"], m["acc"], m["n"], prov[n].get("run_name", "unknown"), prov[n].get("wandb_id", "unknown"), r["checkpoint"]]
        for n, r in results.items() for split, m in r.items() if isinstance(m, dict) and "cer" in m
    ]
    flat = {n: d.to_flat() for n, d in diagnoses.items()}
    keys = sorted({k for scores in flat.values() for k in scores})
    logged: dict[str, Any] = {
        "report/recognition": wandb.Table(columns=columns, data=rows),
        "report/models": wandb.Table(columns=["model", *PROVENANCE_ROWS], data=[[n, *[str(p.get(k, "unknown")) for k in PROVENANCE_ROWS]] for n, p in prov.items()]),
    }
    if diagnoses:  # --diagnostics false: recognition only
        logged["report/shortcut_scores"] = wandb.Table(columns=["model", *keys], data=[[n, *[scores.get(k) for k in keys]] for n, scores in flat.items()])
    logged.update({f"report/{png.stem}": wandb.Image(str(png)) for png in sorted(out.glob("*.png")) if png.stem != "screenshot"})
    run.log(logged)
    # Flat numbers too, so W&B's run comparison and summary show them without opening a table.
    run.summary.update({f"{row[0]}/{row[1]}/{k}": row[2 + i] for row in rows for i, k in enumerate(("cer", "wer", "acc"))})
    run.summary.update({f"{n}/diag/{k}": v for n, scores in flat.items() for k, v in scores.items()})
    run_id = run.id
    run.finish()
    return run_id
