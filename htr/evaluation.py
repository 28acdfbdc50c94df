"""Checkpoint evaluation behind evaluate.py: metrics per checkpoint and split, one table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
from tqdm import tqdm

from htr.argparsing import ArgumentParser
from htr.data.datamodule import WordDataModule
from htr.data.readers import DatasetError
from htr.diagnostics.probes import Diagnosis, ProbeError, ProbeSet, diagnose, select_probes
from htr.report import PROVENANCE_ROWS, write_report
from htr.io import write_json
from htr.model.module import CheckpointError, HTRModule, load_checkpoint

log = logging.getLogger("htr.evaluate")


def checkpoint_name(path: str | Path) -> str:
    """``checkpoints/baseline.ckpt`` -> baseline; ``runs/aug/checkpoints/last.ckpt`` -> aug."""
    path = Path(path)
    if path.stem in ("last",) or path.stem.startswith(("best", "epoch")):
        return path.parent.parent.name or path.stem
    return path.stem


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


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'checkpoint':<24} {'split':<12} {'CER':>7} {'WER':>7} {'acc':>7} {'n':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['checkpoint']:<24} {r['split']:<12} {r['cer']:>7.4f} {r['wer']:>7.4f} {r['acc']:>7.4f} {r['n']:>7d}")
    return "\n".join(lines)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="evaluate.py", description=__doc__)
    parser.add_argument("checkpoints", nargs="+", type=str, help="checkpoint files (.ckpt)")
    parser.add_argument("--splits", type=list[str], default=["test", "test_unseen"], help="splits to evaluate")
    parser.add_argument("--out", type=str, default="reports/compare", help="report folder (metrics.json)")
    parser.add_argument("--device", type=str, default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--progress", type=bool, default=True, help="progress bars")
    parser.add_argument("--probes", type=str | None, default=None, help="saved probe set (e.g. runs/baseline/diagnostics/probes.npz); default: chosen from --probe_split")
    parser.add_argument("--probe_split", type=str, default="val", help="split the probe words are chosen from")
    parser.add_argument("--num_probes", type=int, default=16)
    parser.add_argument("--relevance_probes", type=int, default=4, help="probes that get relevance maps and deletion curves")
    parser.add_argument("--relevance_window", type=int, default=2, help="window size (px) of the relevance maps (1 = the seed's pixel maps, ~1 min per map on CPU)")
    parser.add_argument("--relevance_stride", type=int | None, default=None, help="window step (px); default: the window size")
    parser.add_argument("--max_shift", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="probe choice and noise seed")
    parser.add_argument("--diagnostics", type=bool, default=True, help="run the diagnostics and write the HTML report")
    parser.add_argument("--wandb", type=Literal["offline", "online"] | None, default=None, help="also log the comparison to one W&B run")
    parser.add_argument("--project", type=str, default="htr-shortcuts", help="W&B project of --wandb")
    parser.add_class_arguments(WordDataModule, "data", skip={"charset", "augmentation"})
    return parser


def main(args: list[str] | None = None) -> int:
    cfg = build_parser().parse_args(args)
    try:
        modules = {}
        for path in cfg.checkpoints:
            name = checkpoint_name(path)
            if name in modules:
                name = f"{name}_{len(modules)}"
            modules[name] = load_checkpoint(path)
        rows = []
        results: dict[str, Any] = {}
        for name, module in modules.items():
            data = WordDataModule(charset=module.charset.chars, **{k: v for k, v in vars(cfg.data).items()})
            data.prepare_data(splits=list(dict.fromkeys([*cfg.splits, cfg.probe_split])))
            results[name] = {"checkpoint": str(cfg.checkpoints[list(modules).index(name)]), "hparams": dict(module.hparams), "provenance": module.provenance}
            for split in cfg.splits:
                if split not in data.splits():
                    log.warning("%s: no split %r; skipped", cfg.data.root, split)
                    continue
                metrics = evaluate_split(module, data, split, cfg.device, cfg.progress)
                results[name][split] = metrics
                rows.append({"checkpoint": name, "split": split, **metrics})
        print(format_table(rows))
        out = Path(cfg.out)
        stride = cfg.relevance_stride or cfg.relevance_window
        settings = {
            "data": f"{cfg.data.source} at {cfg.data.root}",
            "probe set": cfg.probes or f"{cfg.num_probes} words of the {cfg.probe_split!r} split (seed {cfg.seed})",
            "relevance": f"{cfg.relevance_window}x{cfg.relevance_window} windows every {stride} px, first {cfg.relevance_probes} probes",
            "shift sweep": f"0..{cfg.max_shift} px",
            "seed (probes, specks)": cfg.seed,
        }
        diagnoses: dict[str, Diagnosis] = {}
        if cfg.diagnostics:
            probes = load_probes(cfg, data)
            for name, module in tqdm(modules.items(), desc="diagnostics", disable=not cfg.progress):
                module.to(cfg.device if cfg.device != "auto" else "cpu")
                diagnoses[name] = diagnose(
                    module.model, probes, module.charset, cfg.max_shift, cfg.relevance_probes,
                    {"window": cfg.relevance_window, "stride": stride}, seed=cfg.seed,
                )
                results[name]["diagnostics"] = diagnoses[name].scores
                results[name]["probes"] = diagnoses[name].probe_rows(probes)
            index = write_report(out, results, diagnoses, probes, settings)
            log.info("report: %s", index)
        if cfg.wandb:
            out.mkdir(parents=True, exist_ok=True)
            log_report_to_wandb(out, results, diagnoses, cfg.wandb, cfg.project, settings)
    except (CheckpointError, DatasetError, ProbeError) as err:
        log.error("%s", err)
        return 2
    write_json(out / "metrics.json", results)
    log.info("wrote %s", out / "metrics.json")
    return 0


def load_probes(cfg: Any, data: WordDataModule) -> ProbeSet:
    """The saved probe set given by --probes, or the same seeded choice the training callback makes."""
    if cfg.probes:
        return ProbeSet.load(cfg.probes)
    splits = data.splits()
    if cfg.probe_split not in splits:
        raise ProbeError(f"{cfg.data.root}: no split {cfg.probe_split!r} to choose probes from (have {', '.join(sorted(splits))})")
    return ProbeSet.from_samples(select_probes(splits[cfg.probe_split], cfg.num_probes, cfg.seed))


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
    keys = sorted({k for d in diagnoses.values() for k in d.scores})
    logged: dict[str, Any] = {
        "report/recognition": wandb.Table(columns=columns, data=rows),
        "report/models": wandb.Table(columns=["model", *PROVENANCE_ROWS], data=[[n, *[str(p.get(k, "unknown")) for k in PROVENANCE_ROWS]] for n, p in prov.items()]),
    }
    if diagnoses:  # --diagnostics false: recognition only
        logged["report/shortcut_scores"] = wandb.Table(columns=["model", *keys], data=[[n, *[d.scores.get(k) for k in keys]] for n, d in diagnoses.items()])
    logged.update({f"report/{png.stem}": wandb.Image(str(png)) for png in sorted(out.glob("*.png")) if png.stem != "screenshot"})
    run.log(logged)
    # Flat numbers too, so W&B's run comparison and summary show them without opening a table.
    run.summary.update({f"{row[0]}/{row[1]}/{k}": row[2 + i] for row in rows for i, k in enumerate(("cer", "wer", "acc"))})
    run.summary.update({f"{n}/diag/{k}": v for n, d in diagnoses.items() for k, v in d.scores.items()})
    run_id = run.id
    run.finish()
    return run_id
