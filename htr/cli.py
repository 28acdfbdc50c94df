"""The training entry point behind train.py (LightningCLI / jsonargparse configs)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.loggers import Logger, WandbLogger

from htr.data.datamodule import WordDataModule
from htr.data.readers import DatasetError
from htr.io import write_json
from htr.model.module import HTRModule, TrainingDiverged

log = logging.getLogger("htr.train")

WANDB_MODES = ("offline", "online", "disabled")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class HTRCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument("--run.name", type=str, default="baseline", help="run folder runs/<name>/ and W&B run name")
        parser.add_argument("--run.dir", type=str, default="runs", help="parent folder of run folders")
        parser.add_argument("--run.wandb", type=str, default="offline", help="W&B mode: offline | online | disabled (WANDB_MODE wins)")
        parser.add_argument("--run.project", type=str, default="htr-shortcuts", help="W&B project")
        parser.add_argument("--run.resume", type=bool, default=True, help="resume from runs/<name>/checkpoints/last.ckpt if it exists")
        parser.add_argument("--run.test_splits", type=list[str], default=["test"], help="splits evaluated after training")
        parser.link_arguments("data.charset", "model.charset", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        cfg = self.config
        run_dir = Path(cfg.run.dir) / cfg.run.name
        mode = os.environ.get("WANDB_MODE", cfg.run.wandb)
        if mode not in WANDB_MODES:
            raise ValueError(f"run.wandb / WANDB_MODE: unknown mode {mode!r}; use one of {', '.join(WANDB_MODES)}")
        cfg.trainer.default_root_dir = str(run_dir)
        loggers: list[Logger] = []
        if mode != "disabled":
            (run_dir).mkdir(parents=True, exist_ok=True)
            loggers.append(WandbLogger(name=cfg.run.name, project=cfg.run.project, save_dir=str(run_dir), mode=mode))
        self._extra = {"run_dir": run_dir, "loggers": loggers}

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
        ]
        if self._extra["loggers"]:
            extra.append(LearningRateMonitor(logging_interval="epoch"))
        # kwargs replace the config's trainer.callbacks, so merge with those (e.g. DiagnosticsCallback).
        configured = self._get(self.config_init, "trainer", default={}).get("callbacks") or []
        kwargs["callbacks"] = list(configured) + list(kwargs.get("callbacks") or []) + extra
        trainer = super().instantiate_trainer(**kwargs)
        if self._extra["loggers"]:
            trainer.loggers = self._extra["loggers"]
        else:
            trainer.loggers = []
        return trainer


def main(args: list[str] | None = None) -> int:
    """Train (and test) as configured; ``args`` default to the command line. Returns an exit code."""
    try:
        cli = HTRCLI(
            HTRModule,
            WordDataModule,
            run=False,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"default_config_files": [str(PROJECT_ROOT / "configs" / "common.yaml")]},
            args=args,
        )
        return fit_and_test(cli)
    except (DatasetError, FileNotFoundError) as err:
        log.error("%s", err)
        return 2
    except TrainingDiverged as err:
        log.error("%s (last good weights: last.ckpt of the run)", err)
        return 3


def fit_and_test(cli: HTRCLI) -> int:
    cfg, trainer, model, data = cli.config, cli.trainer, cli.model, cli.datamodule
    run_dir = Path(trainer.default_root_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if cfg.run.resume and last.is_file() else None
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    if trainer.interrupted:
        log.warning("training interrupted; rerun the same command to resume from %s", last)
        return 130
    best = trainer.checkpoint_callback.best_model_path or None
    metrics: dict[str, Any] = {
        "run": cfg.run.name,
        "epochs": trainer.current_epoch,
        "best_checkpoint": best,
        "skipped_batches": model.skipped_batches,
        "skipped_samples": {r.source: r.counts() for r in data.skip_reports if r.total},
    }
    for split in cfg.run.test_splits:
        if split not in data.splits():
            log.warning("no split %r to test on; skipped", split)
            continue
        data.hparams.test_split = split
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
