"""Study runner behind study.py: arms x seeds -> per-run results (JSON + NPZ) -> one report.

Per-run results are small and meant to be committed, so a study spread over several machines
or interrupted resumes from what is there: a run with ``<results>/runs/<arm>-s<seed>.json`` is
neither trained nor evaluated again. Checkpoints stay under ``run_dir`` (not committed).
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from htr.argparsing import ArgumentParser
from htr.data.datamodule import WordDataModule
from htr.diagnostics import settings as diagnostics_settings
from htr.diagnostics.probes import ProbeError, ProbeSet
from htr.diagnostics.settings import DiagnosticsSettings
from htr.experiment.evaluate import evaluate_split
from htr.experiment.study_report import aggregate, run_name, write_study_report
from htr.io import atomic_write_bytes, write_json
from htr.model.module import load_checkpoint

log = logging.getLogger("htr.study")
QUICK_CONFIG = "configs/study-quick.yaml"  # relative to the current folder, like the arm configs


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="study.py", description=__doc__)
    p.add_argument("--config", action="config")
    p.add_argument("--arms", type=dict[str, str], default={"baseline": "configs/baseline.yaml", "augmented": "configs/augmented.yaml"})
    p.add_argument("--seeds", type=list[int], default=[0, 1, 2])
    p.add_argument("--train_args", type=list[str], default=[])
    p.add_argument("--run_dir", type=str, default="runs/study")
    p.add_argument("--results", type=str, default="docs/results")
    p.add_argument(
        "--data", type=dict[str, Any], default={"source": "synthetic", "root": "data/synthetic"},
        help="WordDataModule settings every run trains and is evaluated with (over the arm configs'), e.g. {source: iam, root: data/iam}",
    )
    p.add_argument("--splits", type=list[str], default=["test", "test_unseen"])
    p.add_argument("--noise_split", type=str, default="test")
    diagnostics_settings.add_arguments(p)
    p.add_argument("--only", type=list[str] | None, default=None, help="run only these <arm>-s<seed> names")
    p.add_argument("--report_only", type=bool, default=False, help="just aggregate the results that exist")
    p.add_argument("--quick", type=bool, default=False, help=f"use {QUICK_CONFIG} (minutes)")
    return p


class StudyError(RuntimeError):
    """A run could not be trained or evaluated; the message says which and what to do."""


def eval_data(cfg: Any, **overrides: Any) -> WordDataModule:
    """The study's data for evaluation (in process, no workers)."""
    return WordDataModule(**{**cfg.data, "num_workers": 0, **overrides})


def train_run(cfg: Any, arm: str, seed: int) -> Path:
    """Train one run through train.py (resumes on its own from last.ckpt); returns its best checkpoint."""
    name = run_name(arm, seed)
    data_args = [a for k, v in cfg.data.items() for a in (f"--data.{k}", json.dumps(v) if isinstance(v, (dict, list)) else str(v))]
    cmd = [
        sys.executable, "-m", "htr.cli", "--config", cfg.arms[arm], *cfg.train_args, *data_args,
        "--run.name", name, "--run.dir", cfg.run_dir, "--seed_everything", str(seed), "--data.seed", str(seed),
        "--run.test_splits", "[]", "--trainer.enable_progress_bar", "false",
    ]
    log.info("training %s: %s", name, " ".join(cmd[1:]))
    code = subprocess.run(cmd).returncode  # same working folder: relative paths mean the same in both
    if code != 0:
        raise StudyError(f"training {name} failed (exit {code}; its error is above); fix it and rerun: finished runs are skipped, this one resumes")
    metrics = json.loads((Path(cfg.run_dir) / name / "metrics.json").read_text())
    return Path(metrics["best_checkpoint"] or Path(cfg.run_dir) / name / "checkpoints" / "last.ckpt")


def study_probes(cfg: Any) -> ProbeSet:
    """One probe set for the whole study, saved with the results so a resumed study reuses it."""
    path = Path(cfg.results) / "probes"
    if path.with_suffix(".npz").is_file():
        return ProbeSet.load(path)
    settings = DiagnosticsSettings.from_config(cfg)
    probes = settings.choose_probes(eval_data(cfg).splits()[settings.probe_split])
    probes.save(path)
    return probes


def evaluate_run(cfg: Any, name: str, ckpt: Path, probes: ProbeSet) -> dict[str, Any]:
    """Metrics on every split (+ noisy split) and the diagnostics; relevance maps to an NPZ."""
    module = load_checkpoint(ckpt)
    data = eval_data(cfg, charset=module.charset.chars)
    out: dict[str, Any] = {"run": name, "checkpoint": str(ckpt), "hparams": dict(module.hparams), "provenance": module.provenance}
    for split in cfg.splits:
        out[split] = evaluate_split(module, data, split, progress=False)
    noisy = eval_data(cfg, charset=module.charset.chars, test_augmentation="noise")
    out[f"{cfg.noise_split}+noise"] = evaluate_split(module, noisy, cfg.noise_split, progress=False)
    diag = DiagnosticsSettings.from_config(cfg).diagnose(module.model, probes, module.charset)
    out["diagnostics"] = diag.scores
    out["probes"] = diag.probe_rows(probes)
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        relevance=np.stack(diag.relevance_maps) if diag.relevance_maps else np.zeros((0, 32, 128)),
        shift_scores=np.stack([np.pad(s.scores, (0, cfg.max_shift + 1 - len(s.scores)), constant_values=np.nan) for s in diag.sweeps]),
    )
    atomic_write_bytes(Path(cfg.results) / "runs" / f"{name}.npz", buf.getvalue())
    write_json(Path(cfg.results) / "runs" / f"{name}.json", out)
    return out


def main(args: list[str] | None = None) -> int:
    parser = build_parser()
    cfg = parser.parse_args(args)
    if cfg.quick:
        cfg = parser.parse_args(["--config", QUICK_CONFIG, *(args if args is not None else sys.argv[1:])])
    try:
        return run_study(cfg)
    except StudyError as err:
        log.error("%s", err)
        return 1
    except ProbeError as err:  # impossible diagnostics settings or an unusable probe set
        log.error("%s", err)
        return 2


def run_study(cfg: Any) -> int:
    results = Path(cfg.results)
    (results / "runs").mkdir(parents=True, exist_ok=True)
    missing = [f"{arm}: {path}" for arm, path in cfg.arms.items() if not Path(path).is_file()]
    if missing:
        raise StudyError(f"arm config not found ({', '.join(missing)}); paths are relative to the current folder (run from the repository root)")
    if not cfg.report_only:
        probes = None
        # Seeds outer: a study cut short still has every arm at the seeds it reached.
        for seed in cfg.seeds:
            for arm in cfg.arms:
                name = run_name(arm, seed)
                if cfg.only and name not in cfg.only:
                    continue
                if (results / "runs" / f"{name}.json").is_file():
                    log.info("%s: results exist; skipped", name)
                    continue
                ckpt = train_run(cfg, arm, seed)
                if probes is None:
                    probes = study_probes(cfg)
                evaluate_run(cfg, name, ckpt, probes)
                log.info("%s: done", name)
    table = aggregate(cfg)
    if not table:
        log.error("%s: no run results yet; run without --report_only first", results / "runs")
        return 2
    index = write_study_report(cfg, table)
    log.info("study report: %s", index)
    return 0

