"""The training entry point behind train.py (LightningCLI / jsonargparse configs)."""

from __future__ import annotations

import argparse
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

import pytorch_lightning as pl
import yaml
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException

from htr.argparsing import OneLineErrors
from htr.data.datamodule import WordDataModule
from htr.data.readers import DatasetError
from htr.errors import USER_OS_ERRORS, ConfigError, HTRError, UsageError, run_main
from htr.io import write_json
from htr.model.module import CheckpointError, HTRModule, read_checkpoint
from htr.provenance import NO_WANDB, git_commit
from htr.train.callbacks import TrainingHistory
from htr.train.wandb_run import STATE_FILE, ResumableWandbLogger

log = logging.getLogger("htr.train")

WandbMode = Literal["offline", "online", "disabled"]
WANDB_MODES: tuple[str, ...] = get_args(WandbMode)
# Read before any --config, relative to the current folder (the repository root, like every config path).
COMMON_CONFIG = Path("configs") / "train" / "common.yaml"


class HTRArgumentParser(OneLineErrors, LightningArgumentParser):
    """LightningCLI's parser with the project's one-line errors and no prefix matching."""


class TrainingStopped(HTRError):
    """Lightning stopped the training after a SIGTERM (a scheduler's preemption or time-out)."""

    exit_code = 143  # 128 + SIGTERM, as if the signal had ended the process: schedulers requeue on it


def setting_paths(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every setting in a parsed config (list items unnumbered, as on the command line)."""
    if isinstance(node, list):
        return [p for item in node for p in setting_paths(item, prefix)]
    if isinstance(node, argparse.Namespace):
        node = vars(node)
    if not isinstance(node, dict):
        return [prefix] if prefix else []
    return [p for key, value in node.items() if not key.startswith("__") for p in setting_paths(value, f"{prefix}.{key}" if prefix else key)]


def named_in_full(err: HTRError, config: Any) -> HTRError:
    """``err`` about a setting of a nested class (``num_probes: must be ...``, ``--num_probes: ...``:
    errors about a setting start with its name) with the setting's full option
    (``--trainer.callbacks.init_args.settings.num_probes: ...``)."""
    match = re.match(r"(?:--)?([A-Za-z_][\w.]*):\s*(.*)", str(err), re.S)
    if not match:
        return err
    name, problem = match.groups()
    paths = setting_paths(config)
    nested = {p for p in paths if p.endswith("." + name)}
    if name in paths or len(nested) != 1:
        return err  # named in full already, or not one setting of the config
    return ConfigError(nested.pop(), problem)


def arm_of(run_name: str) -> str:
    """``augmented-s2`` (or the budget-check run ``augmented-s0-e16``) -> ``augmented``: the arm a run belongs to (its W&B job type)."""
    return re.sub(r"-s\d+(-e\d+)?$", "", run_name)


class HTRCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument("--run.name", type=str, default="baseline", help="run folder runs/<name>/ and W&B run name")
        parser.add_argument("--run.dir", type=str, default="runs", help="parent folder of run folders")
        parser.add_argument("--run.wandb", type=WandbMode, default="offline", help="W&B mode (the WANDB_MODE environment variable wins)")
        parser.add_argument("--run.project", type=str, default="htr-shortcuts", help="W&B project")
        parser.add_argument("--run.group", type=str | None, default=None, help="W&B group = the experiment the run belongs to (default: the name of run.dir, e.g. study)")
        parser.add_argument("--run.resume", type=bool, default=True, help="resume from runs/<name>/checkpoints/last.ckpt if it exists, into the same W&B run")
        parser.add_argument("--run.test_splits", type=list[str], default=["test"], help="splits evaluated after training")
        parser.link_arguments("data.charset", "model.charset", apply_on="instantiate")
        parser.link_arguments("data.align", "model.align")

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except Exception as err:
            # jsonargparse wraps a class's own error (bad value) in a ValueError per nesting level,
            # each with its traceback; the project's error at the bottom is the one line to show.
            cause: BaseException | None = err
            while cause is not None and not isinstance(cause, HTRError):
                cause = cause.__cause__
            if cause is None:
                raise
            raise named_in_full(cause, self.config) from None

    def before_instantiate_classes(self) -> None:
        cfg = self.config
        run_dir = Path(cfg.run.dir) / cfg.run.name
        mode = os.environ.get("WANDB_MODE", cfg.run.wandb)
        if mode not in WANDB_MODES:
            self.parser.error(f"WANDB_MODE: {mode!r} is not one of {', '.join(WANDB_MODES)}")
        cfg.trainer.default_root_dir = str(run_dir)
        group = cfg.run.group or Path(cfg.run.dir).resolve().name
        # Saved in every checkpoint (reports show it) and the W&B run's identity.
        self.run_info = {"name": cfg.run.name, "group": group, "arm": arm_of(cfg.run.name), "seed": cfg.seed_everything, "commit": git_commit()}
        loggers: list[Logger] = []
        if mode != "disabled":
            # Created here but started lazily by Lightning: fit_and_test reads the data first,
            # so a bad data root never leaves an empty W&B run behind. A resumed training continues
            # the W&B run of its earlier legs (htr.train.wandb_run).
            loggers.append(ResumableWandbLogger(
                state_file=run_dir / STATE_FILE, resume=cfg.run.resume,
                name=cfg.run.name, project=cfg.run.project, save_dir=str(run_dir), mode=mode,
                group=group, job_type=self.run_info["arm"], tags=run_tags(cfg), config=self.full_config(),
            ))
        self._extra = {"run_dir": run_dir, "loggers": loggers}

    def full_config(self) -> dict[str, Any]:
        """The whole resolved config (trainer, model, data, run, seed) plus the code's commit."""
        resolved = yaml.safe_load(self.parser.dump(self.config, skip_none=False, skip_validation=True))
        resolved.pop("config", None)
        return {**resolved, "git_commit": self.run_info["commit"], "run": {**resolved.get("run", {}), "group": self.run_info["group"]}}

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        run_dir = self._extra["run_dir"]
        extra = [
            ModelCheckpoint(
                dirpath=str(run_dir / "checkpoints"),
                filename="best-{epoch:03d}",
                monitor="val/cer",
                mode="min",
                save_last=True,
                save_top_k=1,
                auto_insert_metric_name=False,
                enable_version_counter=False,  # the run folder is the run: overwrite, never last-v1.ckpt
            ),
            TrainingHistory(),
        ]
        if self._extra["loggers"]:
            extra.append(LearningRateMonitor(logging_interval="epoch"))
        # kwargs replace the config's trainer.callbacks, so merge with those (e.g. DiagnosticsCallback).
        configured = self._get(self.config_init, "trainer", default={}).get("callbacks") or []
        kwargs["callbacks"] = list(configured) + list(kwargs.get("callbacks") or []) + extra
        # Our loggers (or none), never Lightning's default CSVLogger (and its warning on every run).
        kwargs["logger"] = self._extra["loggers"] or False
        try:
            return super().instantiate_trainer(**kwargs)
        except (MisconfigurationException, ValueError) as err:  # the Trainer's own checks of --trainer.* values
            raise UsageError(f"--trainer: {' '.join(str(err).split())}") from None


def device_name(trainer: pl.Trainer) -> str:
    """``cuda (NVIDIA H100 80GB HBM3)`` or ``cpu (2 threads)``: what a run's wall time was measured on."""
    import torch

    device = trainer.strategy.root_device
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def run_tags(cfg: Any) -> list[str]:
    """W&B tags that filter the arms: augmentation, pooling, seed."""
    return [f"augmentation:{cfg.data.augmentation}", f"pooling:{cfg.model.pooling}", f"seed:{cfg.seed_everything}"]


class ParseOnlyCLI(HTRCLI):
    """train.py's CLI up to the model, data module and callbacks: no W&B run, no Trainer. What a
    command would train, without training it (the config tests; a study's runs trained elsewhere)."""

    def before_instantiate_classes(self) -> None:
        pass

    def instantiate_trainer(self, **kwargs: Any) -> None:  # type: ignore[override]
        return None


def make_cli(args: list[str] | None, cli_class: type[HTRCLI] = HTRCLI) -> HTRCLI:
    """train.py's parsed and instantiated CLI (common.yaml first, then ``args``); ``cli_class`` may
    stop short of a Trainer (the config tests parse every config without training)."""
    return cli_class(
        HTRModule,
        WordDataModule,
        run=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_config_files": [str(COMMON_CONFIG)], "prog": "train.py"},
        parser_class=HTRArgumentParser,
        args=args,
    )


def main(args: list[str] | None = None) -> int:
    """Train (and test) as configured; ``args`` default to the command line. Returns an exit code;
    bad input raises an :class:`HTRError` (``run_main`` makes it one line), after marking a W&B
    run it interrupted as failed."""
    if not COMMON_CONFIG.is_file():
        log.warning("%s not found in %s: only the code's defaults and your --config files apply (run from the repository root)", COMMON_CONFIG, Path.cwd())
    try:
        return fit_and_test(make_cli(args))
    except SIGTERMException:  # Lightning stopped after the batch it was in
        finish_wandb(TrainingStopped.exit_code)
        raise TrainingStopped("training stopped by SIGTERM; rerun the same command to resume from the last epoch's last.ckpt, into the same W&B run") from None
    except (HTRError, *USER_OS_ERRORS) as err:
        finish_wandb(getattr(err, "exit_code", 2))
        raise


def finish_wandb(code: int) -> None:
    """Mark a W&B run that a failure interrupted as failed (not finished) with exit code ``code``."""
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=code)


def fit_and_test(cli: HTRCLI) -> int:
    cfg, trainer, model, data = cli.config, cli.trainer, cli.model, cli.datamodule
    run_dir = Path(trainer.default_root_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if cfg.run.resume and last.is_file() else None
    if ckpt_path:  # a torn last.ckpt: one line before any work, not Lightning's unpickling traceback
        try:
            read_checkpoint(ckpt_path)
        except CheckpointError as err:
            raise CheckpointError(f"{err}; --run.resume false starts afresh") from None
    # Read the data before Lightning starts the loggers (a bad root: one error, no W&B run).
    if trainer.local_rank == 0:
        data.prepare_data()
    if not data.splits().get("train"):  # said before Lightning builds a loader from it
        raise DatasetError(f"{data.root}: no usable training samples (see the warnings above for what was skipped)")
    model.run_info = {**cli.run_info, "wandb_id": NO_WANDB, "wandb_name": NO_WANDB}
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and trainer.is_global_zero:
            model.run_info.update(wandb_id=logger.experiment.id, wandb_name=logger.experiment.name)
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    if trainer.interrupted:
        log.warning("training interrupted; rerun the same command to resume from %s", last)
        return 130
    best = trainer.checkpoint_callback.best_model_path or None
    history = next(cb for cb in trainer.callbacks if isinstance(cb, TrainingHistory))
    metrics: dict[str, Any] = {
        "run": cfg.run.name,
        "epochs": trainer.current_epoch,
        "max_epochs": trainer.max_epochs,
        "precision": str(trainer.precision),
        "device": device_name(trainer),
        **history.summary(),
        "best_checkpoint": best,
        "skipped_batches": model.skipped_batches,
        "skipped_samples": {r.source: r.counts() for r in data.skip_reports if r.total},
    }
    for split in cfg.run.test_splits:
        if split not in data.splits():
            log.warning("no split %r to test on; skipped", split)
            continue
        data.hparams.test_split = split
        model.test_prefix = split  # test/..., test_unseen/...: one key prefix per split
        result = trainer.test(model, datamodule=data, ckpt_path=best, verbose=False)[0]
        metrics[split] = {k.split("/", 1)[1]: float(v) for k, v in result.items()}
        metrics[split]["n"] = len(data.splits()[split])
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
        log.info("metrics: %s", {k: v for k, v in metrics.items() if isinstance(v, dict)})
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()  # flush media and history before the next run in this process
    return 0


if __name__ == "__main__":  # python -m htr.train.cli: train.py's twin (the study's training processes)
    os.environ.setdefault("WANDB_SILENT", "true")
    run_main(main, prog="train.py")
