"""Study runner behind study.py: arms x seeds -> per-run results (JSON + NPZ) -> one report.

Per-run results are small and meant to be committed, so a study spread over several machines
or sessions resumes from what is there: a run with ``<results>/runs/<arm>-s<seed>.json`` is
neither trained nor evaluated again. Checkpoints stay under ``run_dir`` (not committed).
"""

from __future__ import annotations

import io
import json
import logging
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from htr.argparsing import ArgumentParser
from htr.data.datamodule import WordDataModule
from htr.diagnostics.probes import ProbeSet, diagnose, select_probes
from htr.diagnostics.scores import mean_periodic_amplitude
from htr.evaluation import evaluate_split
from htr.io import atomic_write_bytes, write_json
from htr.model.module import load_checkpoint

log = logging.getLogger("htr.study")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    p.add_argument("--num_probes", type=int, default=64)
    p.add_argument("--relevance_probes", type=int, default=4)
    p.add_argument("--relevance_window", type=int, default=1)
    p.add_argument("--relevance_stride", type=int, default=1, help="window step; > 1 trades map resolution for time")
    p.add_argument("--max_shift", type=int, default=16)
    p.add_argument("--only", type=list[str] | None, default=None, help="run only these <arm>-s<seed> names")
    p.add_argument("--report_only", type=bool, default=False, help="just aggregate the results that exist")
    p.add_argument("--quick", type=bool, default=False, help="use configs/study-quick.yaml (minutes)")
    return p


class StudyError(RuntimeError):
    """A run could not be trained or evaluated; the message says which and what to do."""


def eval_data(cfg: Any, **overrides: Any) -> WordDataModule:
    """The study's data for evaluation (in process, no workers)."""
    return WordDataModule(**{**cfg.data, "num_workers": 0, **overrides})


def run_name(arm: str, seed: int) -> str:
    return f"{arm}-s{seed}"


def train_run(cfg: Any, arm: str, seed: int) -> Path:
    """Train one run through train.py (resumes on its own from last.ckpt); returns its best checkpoint."""
    name = run_name(arm, seed)
    data_args = [a for k, v in cfg.data.items() for a in (f"--data.{k}", json.dumps(v) if isinstance(v, (dict, list)) else str(v))]
    cmd = [
        sys.executable, str(PROJECT_ROOT / "train.py"), "--config", cfg.arms[arm], *cfg.train_args, *data_args,
        "--run.name", name, "--run.dir", cfg.run_dir, "--seed_everything", str(seed), "--data.seed", str(seed),
        "--run.test_splits", "[]", "--trainer.enable_progress_bar", "false",
    ]
    log.info("training %s: %s", name, " ".join(cmd[1:]))
    code = subprocess.run(cmd).returncode  # same working folder: relative paths mean the same in both
    if code != 0:
        raise StudyError(f"training {name} failed (exit {code}; its error is above); fix it and rerun: finished runs are skipped, this one resumes")
    metrics = json.loads((Path(cfg.run_dir) / name / "metrics.json").read_text())
    return Path(metrics["best_checkpoint"] or Path(cfg.run_dir) / name / "checkpoints" / "last.ckpt")


def study_probes(cfg: Any, data: WordDataModule) -> ProbeSet:
    """One probe set for the whole study, saved with the results so later sessions reuse it."""
    path = Path(cfg.results) / "probes"
    if path.with_suffix(".npz").is_file():
        return ProbeSet.load(path)
    probes = ProbeSet.from_samples(select_probes(data.splits()["val"], cfg.num_probes, seed=0))
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
    diag = diagnose(module.model, probes, module.charset, cfg.max_shift, cfg.relevance_probes, {"window": cfg.relevance_window, "stride": cfg.relevance_stride})
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


def flat(result: dict[str, Any], splits: list[str], noise_split: str, shift_scores: np.ndarray | None = None) -> dict[str, float]:
    """The numbers the study aggregates, from one run's results (and its NPZ's shift curves)."""
    row: dict[str, float] = {}
    for split in [*splits, f"{noise_split}+noise"]:
        if split in result:
            for k in ("cer", "wer", "acc"):
                row[f"{split}/{k}"] = float(result[split][k])
    if noise_split in result and f"{noise_split}+noise" in result:
        # The noise's own cost: arms differ in clean CER, so noisy CER alone mixes both.
        row[f"{noise_split}+noise/cer_increase"] = float(result[f"{noise_split}+noise"]["cer"]) - float(result[noise_split]["cer"])
    diag = result["diagnostics"]
    row.update({f"diag/{k}": float(v) for k, v in diag.items()})
    if "periodic_amplitude@4" not in diag and shift_scores is not None:
        row["diag/periodic_amplitude@4"] = mean_periodic_amplitude(shift_scores, 4)  # results made before the key existed
    # Worst accuracy loss over all shifts: the "stays within 2 points over 0..16 px" test.
    shifted = [float(v) for k, v in diag.items() if k.startswith("acc@shift")]
    if shifted:
        row["diag/max_acc_drop"] = float(diag["acc@shift0"]) - min(shifted)
    return row


def load_flat(json_path: Path, splits: list[str], noise_split: str) -> dict[str, float]:
    """:func:`flat` of a stored run (``<name>.json`` + ``<name>.npz``)."""
    npz = json_path.with_suffix(".npz")
    shift_scores = np.load(npz)["shift_scores"] if npz.is_file() else None
    return flat(json.loads(json_path.read_text()), splits, noise_split, shift_scores)


def aggregate(cfg: Any) -> dict[str, dict[str, tuple[float, float, int]]]:
    """mean, sd, n per arm and number, over the seeds whose results exist."""
    table: dict[str, dict[str, tuple[float, float, int]]] = {}
    for arm in cfg.arms:
        rows = []
        for seed in cfg.seeds:
            f = Path(cfg.results) / "runs" / f"{run_name(arm, seed)}.json"
            if f.is_file():
                rows.append(load_flat(f, cfg.splits, cfg.noise_split))
        if not rows:
            continue
        keys = sorted(set().union(*rows))
        table[arm] = {}
        for k in keys:
            vals = np.array([r[k] for r in rows if k in r and math.isfinite(r[k])])
            table[arm][k] = (float(vals.mean()) if len(vals) else math.nan, float(vals.std(ddof=1)) if len(vals) > 1 else math.nan, int(len(vals)))
    return table


def main(args: list[str] | None = None) -> int:
    parser = build_parser()
    cfg = parser.parse_args(args)
    if cfg.quick:
        cfg = parser.parse_args(["--config", str(PROJECT_ROOT / "configs" / "study-quick.yaml"), *(args if args is not None else sys.argv[1:])])
    try:
        return run_study(cfg)
    except StudyError as err:
        log.error("%s", err)
        return 1


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
                    probes = study_probes(cfg, eval_data(cfg))
                evaluate_run(cfg, name, ckpt, probes)
                log.info("%s: done", name)
    from htr.study_report import write_study_report

    table = aggregate(cfg)
    if not table:
        log.error("%s: no run results yet; run without --report_only first", results / "runs")
        return 2
    index = write_study_report(cfg, table)
    log.info("study report: %s", index)
    return 0

