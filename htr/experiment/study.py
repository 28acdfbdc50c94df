"""Study runner behind study.py: arms x seeds (+ budget-check runs) -> per-run results (JSON + NPZ) -> one report.

Per-run results are small and meant to be committed, so a study spread over several machines
or interrupted resumes from what is there: a run with ``<results>/runs/<arm>-s<seed>.json`` is
neither trained nor evaluated again. Checkpoints stay under ``run_dir`` (not committed).
``--parallel N`` trains and evaluates N runs at once, each in its own process (several small
models share one GPU well); ``--launcher submitit`` makes each run a Slurm job instead
(``htr.experiment.launcher``). Either way the data, its crop cache and the probe set are made
first, once.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from htr.argparsing import ArgumentParser
from htr.diagnostics import settings as diagnostics_settings
from htr.diagnostics.probes import ProbeSet
from htr.diagnostics.scorer import CRNNScorer
from htr.diagnostics.settings import DiagnosticsSettings
from htr.errors import ConfigError, HTRError, UsageError, at_least, run_main
from htr.experiment.evaluate import check_extra_sets, eval_data, evaluate_extra_sets, evaluate_split, resolve_device
from htr.experiment.launcher import SlurmSettings, submit_runs, wait_for
from htr.experiment.study_report import BudgetCheck, aggregate, run_name, write_study_report
from htr.io import write_json, write_npz
from htr.model.module import load_checkpoint, read_checkpoint

log = logging.getLogger("htr.study")
QUICK_CONFIG = "configs/study/study-quick.yaml"  # relative to the current folder, like the arm configs


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="study.py", description=__doc__)
    p.add_argument("--config", action="config")
    p.add_argument("--arms", type=dict[str, str], default={"baseline": "configs/train/baseline.yaml", "augmented": "configs/train/augmented.yaml"})
    p.add_argument("--seeds", type=list[int], default=[0, 1, 2])
    p.add_argument(
        "--epochs", type=int | None, default=None,
        help="the recipe runs' epochs (--trainer.max_epochs) over the arm configs' (configs/train/common.yaml), e.g. 8 to extend a study made at the earlier recipe",
    )
    p.add_argument("--train_args", type=list[str], default=[])
    p.add_argument("--run_dir", type=str, default="runs/study")
    p.add_argument("--results", type=str, default="docs/results")
    p.add_argument(
        "--data", type=dict[str, Any], default={"source": "synthetic", "root": "data/synthetic"},
        help="WordDataModule settings every run trains and is evaluated with (over the arm configs'), e.g. {source: iam, root: data/iam}",
    )
    p.add_argument("--splits", type=list[str], default=["test", "test_unseen"])
    p.add_argument("--noise_split", type=str, default="test")
    p.add_argument(
        "--extra_sets", type=dict[str, dict[str, Any]], default={},
        help="more evaluation sets, name: {data: {WordDataModule settings}, split: name}, e.g. real_words: {data: {source: folder, root: data/real-words}, split: all}",
    )
    p.add_argument("--device", type=str, default="cpu", help="evaluation device: cpu | cuda | auto (training: --trainer.accelerator in train_args)")
    p.add_argument("--parallel", type=int, default=1, help="local launcher: runs trained and evaluated at once, each in its own process")
    p.add_argument("--launcher", type=Literal["local", "submitit"], default="local", help="local: this machine (--parallel); submitit: one Slurm job per run (slurm: settings)")
    p.add_argument("--slurm", type=SlurmSettings, default=SlurmSettings(), help="each run's job resources with --launcher submitit (partition, gpus_per_node, cpus_per_task, mem_gb, timeout_min, ...)")
    p.add_argument("--wait", type=bool, default=True, help="submitit: wait for the jobs, then write the report (false: submit and return)")
    p.add_argument(
        "--budget_check", type=BudgetCheck | None, default=None,
        help="longer runs beside the recipe's, e.g. {epochs: 16, arms: [baseline, augmented], seeds: [0]}: runs <arm>-s<seed>-e16; the report says whether the recipe's budget suffices",
    )
    p.add_argument(
        "--trained", type=dict[str, TrainedRun], default={},
        help="runs trained outside the study, evaluated as these runs instead of trained again, e.g. "
        "{baseline-s0: {checkpoint: checkpoints/baseline.ckpt, training: docs/results/default/baseline-metrics.json}}; "
        "each must have been trained with the run's recipe (checked)",
    )
    p.add_argument("--report", type=bool, default=True, help="write the study report when the runs are done")
    diagnostics_settings.add_arguments(p)
    p.add_argument("--only", type=list[str] | None, default=None, help="run only these <arm>-s<seed> (or <arm>-s<seed>-e<epochs>) names")
    p.add_argument("--report_only", type=bool, default=False, help="just aggregate the results that exist")
    p.add_argument("--quick", type=bool, default=False, help=f"use {QUICK_CONFIG} (minutes)")
    return p


@dataclass(frozen=True)
class TrainedRun:
    """A run trained outside the study (e.g. the shipped pair, by tools/retrain_shipped.sh): its
    checkpoint and its training's ``metrics.json`` (epochs, val CER per epoch, wall time). The study
    evaluates it as one of its runs; :func:`recipe_differences` checks it was trained as that run."""

    checkpoint: str
    training: str

    @classmethod
    def from_config(cls, spec: Any) -> TrainedRun:
        return spec if isinstance(spec, cls) else cls(**{k: getattr(spec, k) for k in cls.__dataclass_fields__})


# Settings that change how a run is fed or evaluated, not what it learns: a run trained elsewhere may differ in them.
NOT_RECIPE = {"num_workers", "eval_batch_size", "cache_crops", "cache_dir", "test_split", "test_augmentation", "validate_images"}


class StudyError(HTRError, RuntimeError):
    """A run could not be trained or evaluated; the message says which and what to do."""

    exit_code = 1  # a run failed (its own error is in its log), unlike bad input (2)


class PlannedRun(NamedTuple):
    """One run of the study: an arm at a seed, at the recipe's epochs or (a budget-check run) at ``epochs``."""

    arm: str
    seed: int
    epochs: int | None = None

    @property
    def name(self) -> str:
        return run_name(self.arm, self.seed, self.epochs)


# The training processes this process has running (stop_training ends them).
_trainings: list[subprocess.Popen] = []


def train_command(cfg: Any, run: PlannedRun) -> list[str]:
    """train.py's arguments for one run: its arm's config, the study's ``train_args`` and ``data``
    (over the arm's), the run's epochs (a budget-check run's, else the study's ``epochs`` where set), name, folder and seed; no test splits (the study evaluates)."""
    data_args = [a for k, v in cfg.data.items() for a in (f"--data.{k}", json.dumps(v) if isinstance(v, (dict, list)) else str(v))]
    epochs = run.epochs if run.epochs is not None else cfg.epochs
    return [
        "--config", cfg.arms[run.arm], *cfg.train_args, *data_args,
        *(["--trainer.max_epochs", str(epochs)] if epochs is not None else []),
        "--run.name", run.name, "--run.dir", cfg.run_dir, "--seed_everything", str(run.seed), "--data.seed", str(run.seed),
        "--run.test_splits", "[]", "--trainer.enable_progress_bar", "false",
    ]


def train_run(cfg: Any, run: PlannedRun, ignore_signal: int | None = None) -> Path:
    """Train one run through train.py (resumes on its own from last.ckpt); returns its best checkpoint.

    ``ignore_signal``: a signal the training process ignores (a job's scheduler signal, which its job handles)."""
    name = run.name
    cmd = [sys.executable, "-m", "htr.train.cli", *train_command(cfg, run)]
    log.info("training %s: %s", name, " ".join(cmd[1:]))
    ignore = (lambda: signal.signal(ignore_signal, signal.SIG_IGN)) if ignore_signal is not None else None
    proc = subprocess.Popen(cmd, preexec_fn=ignore)  # same working folder: relative paths mean the same in both
    _trainings.append(proc)
    try:
        while proc.poll() is None:  # not wait(): a signal handler may have to reap it (stop_training)
            time.sleep(0.5)
    finally:
        _trainings.remove(proc)
    if proc.returncode != 0:
        raise StudyError(f"training {name} failed (exit {proc.returncode}; its error is above); fix it and rerun: finished runs are skipped, this one resumes")
    metrics = json.loads((Path(cfg.run_dir) / name / "metrics.json").read_text())
    return Path(metrics["best_checkpoint"] or Path(cfg.run_dir) / name / "checkpoints" / "last.ckpt")


def stop_training(grace_s: float) -> None:
    """SIGTERM this process's trainings (Lightning stops them after the batch they are in; their
    last.ckpt, written at the last epoch's end, stays whole) and wait up to ``grace_s`` for them,
    then kill them. Called from a signal handler, so it reaps them itself (os.waitpid)."""
    for proc in list(_trainings):
        if proc.returncode is not None:
            continue
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        try:
            while os.waitpid(proc.pid, os.WNOHANG)[0] == 0:
                if time.monotonic() > deadline:
                    log.warning("training pid %d still running after %.0f s: killed", proc.pid, grace_s)
                    proc.kill()
                    os.waitpid(proc.pid, 0)
                    break
                time.sleep(0.2)
        except ChildProcessError:  # already reaped
            pass
        log.info("training pid %d stopped", proc.pid)


def run_one(cfg: Any, run: PlannedRun, ignore_signal: int | None = None) -> str:
    """Train and evaluate one run unless its results exist (a run in ``trained`` is only evaluated);
    returns its results JSON (what a run's job returns)."""
    path = Path(cfg.results) / "runs" / f"{run.name}.json"
    if not path.is_file():
        if run.name in cfg.trained:
            trained = TrainedRun.from_config(cfg.trained[run.name])
            log.info("%s: trained outside the study (%s); evaluated", run.name, trained.checkpoint)
            ckpt, training = Path(trained.checkpoint), Path(trained.training)
        else:
            ckpt, training = train_run(cfg, run, ignore_signal), Path(cfg.run_dir) / run.name / "metrics.json"
        evaluate_run(cfg, run.name, ckpt, training, study_probes(cfg))
    log.info("%s: done", run.name)
    return str(path)


def study_probes(cfg: Any) -> ProbeSet:
    """One probe set for the whole study, saved with the results so a resumed study reuses it."""
    path = Path(cfg.results) / "probes"
    if path.with_suffix(".npz").is_file():
        return ProbeSet.load(path)
    settings = DiagnosticsSettings.from_config(cfg)
    probes = settings.choose_probes(eval_data(cfg.data, num_workers=0).splits()[settings.probe_split])
    probes.save(path)
    return probes


def evaluate_run(cfg: Any, name: str, ckpt: Path, training: Path, probes: ProbeSet) -> dict[str, Any]:
    """Metrics on every split (+ noisy split, + extra sets) and the diagnostics (on the probes
    placed as this model reads words); the training record (train.py's ``metrics.json``,
    ``training``); relevance maps to an NPZ."""
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    module = load_checkpoint(ckpt)
    data = eval_data(cfg.data, module, num_workers=0)  # in process: no loader workers
    out: dict[str, Any] = {
        "run": name, "checkpoint": str(ckpt), "hparams": dict(module.hparams), "provenance": module.provenance,
        "training": {k: v for k, v in json.loads(training.read_text()).items() if k != "best_checkpoint"} if training.is_file() else {},
    }
    for split in cfg.splits:
        out[split] = evaluate_split(module, data, split, device, progress=False)
    noisy = eval_data(cfg.data, module, num_workers=0, test_augmentation="noise")
    out[f"{cfg.noise_split}+noise"] = evaluate_split(module, noisy, cfg.noise_split, device, progress=False)
    out.update(evaluate_extra_sets(module, cfg.extra_sets, device, readings=False)[0])
    module.to(device)
    probes = probes.aligned(module.align)
    diag = DiagnosticsSettings.from_config(cfg).diagnose(CRNNScorer.of(module), probes)
    out["diagnostics"] = diag.to_flat()
    out["probes"] = diag.probe_rows(probes)
    write_npz(
        Path(cfg.results) / "runs" / f"{name}.npz",
        relevance=np.stack(diag.relevance_maps) if diag.relevance_maps else np.zeros((0, 32, 128)),
        shift_scores=np.stack([np.pad(s.scores, (0, cfg.max_shift + 1 - len(s.scores)), constant_values=np.nan) for s in diag.sweeps]),
    )
    out["evaluation"] = {"device": device, "wall_time_s": round(time.perf_counter() - start, 1)}
    write_json(Path(cfg.results) / "runs" / f"{name}.json", out)  # last: its presence marks the run done
    return out


def main(args: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(args if args is not None else sys.argv[1:])
    cfg = parser.parse_args(argv)
    if cfg.quick:
        argv = ["--config", QUICK_CONFIG, *argv]
        cfg = parser.parse_args(argv)
    check_config(cfg)
    return run_study(cfg, argv)  # a bad data root or probe set raises before any run starts too


def check_config(cfg: Any) -> None:
    """Raise a ``ConfigError`` for a bad value of a parsed study config: here, before any run starts
    (not in a run's log, or hours in)."""
    at_least("parallel", cfg.parallel, 1)
    DiagnosticsSettings.from_config(cfg)
    eval_data(cfg.data, num_workers=0)
    check_extra_sets(cfg.extra_sets)
    resolve_device(cfg.device)
    check_trained(cfg)


def check_trained(cfg: Any) -> None:
    """Each ``trained`` entry names a run of the study and was trained with that run's recipe."""
    planned = {run.name: run for run in planned_runs(cfg)}
    for name, spec in cfg.trained.items():
        if name not in planned:
            raise ConfigError(f"trained.{name}", f"not a run of this study (its runs: {', '.join(planned)})")
        trained = TrainedRun.from_config(spec)
        if not Path(trained.training).is_file():
            raise ConfigError(f"trained.{name}.training", f"{trained.training} not found (the training's metrics.json, train.py's runs/<name>/metrics.json)")
        differences = recipe_differences(cfg, planned[name], trained)
        if differences:
            raise ConfigError(
                f"trained.{name}", f"{trained.checkpoint} was not trained as this run ({'; '.join(differences)}); drop it from trained: and the study trains the run",
            )


def recipe_differences(cfg: Any, run: PlannedRun, trained: TrainedRun) -> list[str]:
    """How a checkpoint's training differs from what the study would train as ``run``: model and
    data settings (not those in :data:`NOT_RECIPE`), arm, seed and epochs; empty where it matches."""
    from htr.train.cli import ParseOnlyCLI, make_cli  # Lightning's CLI: only when a trained run is given

    try:
        ckpt = read_checkpoint(trained.checkpoint)
    except HTRError as err:
        raise ConfigError(f"trained.{run.name}.checkpoint", str(err)) from None
    recipe = make_cli(train_command(cfg, run), ParseOnlyCLI)
    record = json.loads(Path(trained.training).read_text())
    provenance = ckpt.get("htr_run", {})
    differences = []
    for section, wanted, got in [
        ("model", recipe.model.hparams, ckpt["hyper_parameters"]),
        ("data", recipe.datamodule.hparams, ckpt.get("datamodule_hyper_parameters", {})),
    ]:
        for key in sorted(k for k in {*wanted, *got} if not k.startswith("_") and k not in NOT_RECIPE):
            if wanted.get(key) != got.get(key):
                differences.append(f"{section}.{key}: {got.get(key)!r}, the run's {wanted.get(key)!r}")
    for key, wanted, got in [
        ("arm", run.arm, provenance.get("arm")),
        ("seed", recipe.config.seed_everything, provenance.get("seed")),
        ("epochs", recipe.config.trainer.max_epochs, record.get("max_epochs")),
    ]:
        if wanted != got:
            differences.append(f"{key}: {got!r}, the run's {wanted!r}")
    return differences


def planned_runs(cfg: Any) -> list[PlannedRun]:
    """Every run of the study, seeds outer: a study cut short still has every arm at the seeds it
    reached; the budget-check runs last (they compare with finished recipe runs)."""
    check = BudgetCheck.from_config(cfg)
    planned = [PlannedRun(arm, seed) for seed in cfg.seeds for arm in cfg.arms]
    return planned + ([PlannedRun(arm, seed, check.epochs) for arm, seed in check.runs()] if check else [])


def pending_runs(cfg: Any) -> list[PlannedRun]:
    """The runs without results (of ``only``, where given), in :func:`planned_runs` order."""
    todo = []
    for run in planned_runs(cfg):
        if cfg.only and run.name not in cfg.only:
            continue
        if (Path(cfg.results) / "runs" / f"{run.name}.json").is_file():
            log.info("%s: results exist; skipped", run.name)
            continue
        todo.append(run)
    return todo


def prepare_shared(cfg: Any) -> ProbeSet:
    """What every run reads, made once before runs start side by side: the data (generated if
    synthetic), its crop cache (if ``cache_crops``) and the study's probe set."""
    data = eval_data(cfg.data, num_workers=0)
    data.prepare_data()
    if cfg.data.get("cache_crops"):
        for split in data.splits():
            data.dataset(split)  # builds the split's cache with every core (htr.data.cache)
    return study_probes(cfg)


def run_in_subprocess(cfg: Any, argv: list[str], name: str) -> None:
    """One run (train + evaluate) as ``study.py ... --only [name] --parallel 1 --report false``,
    its log in ``<run_dir>/<name>.log``."""
    logfile = Path(cfg.run_dir) / f"{name}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "htr.experiment.study", *argv, "--only", json.dumps([name]), "--parallel", "1", "--report", "false"]
    with logfile.open("ab") as fh:
        code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise StudyError(f"{name} failed (exit {code}); see {logfile}; rerun the study: finished runs are skipped, this one resumes")
    log.info("%s: done", name)


def run_study(cfg: Any, argv: list[str] | None = None) -> int:
    results = Path(cfg.results)
    (results / "runs").mkdir(parents=True, exist_ok=True)
    missing = [f"{arm}: {path}" for arm, path in cfg.arms.items() if not Path(path).is_file()]
    if missing:
        raise ConfigError("arms", f"arm config not found ({', '.join(missing)}); paths are relative to the current folder (run from the repository root)")
    check = BudgetCheck.from_config(cfg)
    unknown = [arm for arm in (check.arms if check else []) if arm not in cfg.arms]
    if unknown:
        raise ConfigError("budget_check.arms", f"{', '.join(unknown)} not among the study's arms ({', '.join(cfg.arms)})")
    if check and cfg.epochs is not None and check.epochs <= cfg.epochs:
        raise ConfigError("budget_check.epochs", f"{check.epochs}: not more than the recipe's {cfg.epochs} epochs (epochs:); the check trains longer than the recipe, e.g. {2 * cfg.epochs}")
    if check and check.sd_results is not None and not (Path(check.sd_results) / "runs").is_dir():
        raise ConfigError("budget_check.sd_results", f"{check.sd_results}: no study results there (no runs/ folder); name the results folder of a study at several seeds, e.g. docs/results")
    todo = [] if cfg.report_only else pending_runs(cfg)
    if todo:
        prepare_shared(cfg)
        if cfg.launcher == "submitit":
            jobs = submit_runs(
                SlurmSettings.from_config(cfg.slurm), Path(cfg.run_dir) / "submitit", Path(cfg.run_dir).name,
                {run.name: functools.partial(run_one, cfg, run) for run in todo}, stop_training,
            )
            if not cfg.wait:
                log.info("%d jobs submitted; when they are done: python study.py %s --report_only true", len(jobs), shlex.join(argv or []))
                return 0
            failures = wait_for(jobs)
            if failures:
                raise StudyError("; ".join(failures) + "; rerun the study: finished runs are skipped, the others resume")
        elif cfg.parallel > 1 and len(todo) > 1:
            names = [run.name for run in todo]
            with ThreadPoolExecutor(cfg.parallel) as pool:  # threads only wait on the run processes
                failures = [err for err in pool.map(lambda n: _capture(run_in_subprocess, cfg, argv or [], n), names) if err]
            if failures:
                raise StudyError("; ".join(str(f) for f in failures))
        else:
            for run in todo:
                run_one(cfg, run)
    if not cfg.report:
        return 0
    table = aggregate(cfg)
    if not table:
        raise UsageError(f"{results / 'runs'}: no run results yet; run without --report_only first")
    index = write_study_report(cfg, table)
    log.info("study report: %s", index)
    return 0



def _capture(fn: Any, *args: Any) -> StudyError | None:
    try:
        fn(*args)
    except StudyError as err:
        log.error("%s", err)
        return err
    return None


if __name__ == "__main__":  # the per-run processes of --parallel
    run_main(main, prog="study.py")
