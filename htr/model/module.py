"""Thin LightningModule around the CRNN: CTC loss, optimiser, CER/WER/word accuracy."""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torchmetrics import MeanMetric
from torchmetrics.text import CharErrorRate, WordErrorRate

from htr.data.preprocess import Alignment
from htr.errors import HTRError, at_least, positive
from htr.io import atomic_write_bytes
from htr.model.crnn import CHANNELS, CRNN
from htr.provenance import checkpoint_provenance
from htr.text import IAM_CHARSET, Charset, ctc_nll, decode

log = logging.getLogger(__name__)


class CheckpointError(HTRError, ValueError):
    """A checkpoint that cannot be loaded; the message names the file and what to do."""


class TrainingDiverged(HTRError, RuntimeError):
    """Too many non-finite losses in a row: the run stops with this message instead of wasting hours."""

    exit_code = 3  # train.py's status for a diverged run (a scheduler can tell it from bad input)


class WordAccuracy(MeanMetric):
    """Share of words recognised exactly (corpus level, synced across ranks)."""

    def update(self, preds: list[str], targets: list[str]) -> None:  # type: ignore[override]
        super().update(torch.tensor([float(p == t) for p, t in zip(preds, targets)]))


class HTRModule(pl.LightningModule):
    """SimpleHTR recogniser. ``charset`` and every argument are saved in the checkpoint.

    Args:
        charset: characters the model can output (class 0 is the CTC blank).
        pooling: ``max`` (SimpleHTR) or ``blur`` (anti-aliased max-pool, Zhang 2019).
        lr, weight_decay: AdamW settings.
        scheduler: ``none``, ``cosine`` (to zero over training) or ``onecycle``.
        warmup_steps: linear warm-up of the learning rate.
        decoder, beam_width: decoding for validation/test metrics (``best_path`` or ``beam``).
        max_bad_batches: consecutive non-finite losses after which training stops (diverged).
        lstm_units, lstm_layers, channels: the CRNN's size (defaults: SimpleHTR's, as the shipped
            checkpoints; tests train a tiny one).
        align: where the words it was trained on sit (``left`` as IAM, or ``centre``); linked to
            ``data.align``. Evaluation and diagnostics place words this way for this model.
    """

    def __init__(
        self,
        charset: str = IAM_CHARSET,
        pooling: Literal["max", "blur"] = "max",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: Literal["none", "cosine", "onecycle"] = "cosine",
        warmup_steps: int = 200,
        decoder: Literal["best_path", "beam"] = "best_path",
        beam_width: int = 10,
        max_bad_batches: int = 20,
        lstm_units: int = 256,
        lstm_layers: int = 2,
        channels: tuple[int, int, int, int, int] = CHANNELS,
        align: Alignment = "left",
    ) -> None:
        super().__init__()
        # Checked here, where the values are defined: a bad one fails before any data is read.
        positive("model.lr", lr)
        for name, value, low in (("weight_decay", weight_decay, 0), ("warmup_steps", warmup_steps, 0), ("beam_width", beam_width, 1),
                                 ("max_bad_batches", max_bad_batches, 1), ("lstm_units", lstm_units, 1), ("lstm_layers", lstm_layers, 1)):
            at_least(f"model.{name}", value, low)
        for value in channels:
            at_least("model.channels", value, 1)
        self.save_hyperparameters()
        self.charset = Charset(charset)
        self.model = CRNN(self.charset.num_classes, pooling=pooling, lstm_units=lstm_units, lstm_layers=lstm_layers, channels=tuple(channels))
        self.val_cer, self.val_wer, self.val_acc = CharErrorRate(), WordErrorRate(), WordAccuracy()
        self.test_cer, self.test_wer, self.test_acc = CharErrorRate(), WordErrorRate(), WordAccuracy()
        self.skipped_batches = 0
        self._bad_in_a_row = 0
        # Metric key prefix of test_step: the split being tested, so splits never share keys.
        self.test_prefix = "test"
        # Set by train.py (run name, group, W&B id, seed, commit); saved in every checkpoint.
        self.run_info: dict[str, Any] = {}
        self.provenance: dict[str, Any] = {}  # filled by load_checkpoint (htr.provenance)

    @property
    def align(self) -> Alignment:
        return self.hparams.align

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 1, 32, 128) -> log-probs (B, 32, C)."""
        return self.model(images)

    def ctc_loss(self, log_probs: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Mean CTC loss of the batch; an infeasible text (too long for the frames) adds 0, not inf."""
        return ctc_nll(log_probs, texts, self.charset, reduction="mean", zero_infinity=True)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        loss = self.ctc_loss(self(batch["image"]), batch["text"])
        if not torch.isfinite(loss):
            # Skip the update rather than poison the weights; stop if it keeps happening.
            self.skipped_batches += 1
            self._bad_in_a_row += 1
            log.warning("non-finite loss in batch %d of epoch %d: skipped (%d so far)", batch_idx, self.current_epoch, self.skipped_batches)
            if self._bad_in_a_row >= self.hparams.max_bad_batches:
                raise TrainingDiverged(
                    f"training diverged: {self._bad_in_a_row} non-finite losses in a row; lower --model.lr or check the data (last good weights: last.ckpt of the run)"
                )
            return None
        self._bad_in_a_row = 0
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["text"]))
        # The epoch mean too: per-step points come only every trainer.log_every_n_steps.
        self.log("train/epoch_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["text"]), sync_dist=True)
        self.log("train/skipped_batches", float(self.skipped_batches), batch_size=len(batch["text"]))
        return loss

    def predict_texts(self, images: torch.Tensor) -> list[str]:
        return decode(self(images), self.charset, self.hparams.decoder, self.hparams.beam_width)

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        log_probs = self(batch["image"])
        texts = batch["text"]
        loss = self.ctc_loss(log_probs, texts)
        preds = decode(log_probs, self.charset, self.hparams.decoder, self.hparams.beam_width)
        cer, wer, acc = (self.val_cer, self.val_wer, self.val_acc) if stage == "val" else (self.test_cer, self.test_wer, self.test_acc)
        cer.update(preds, texts)
        wer.update(preds, texts)
        acc.update(preds, texts)
        n = len(texts)
        key = stage if stage == "val" else self.test_prefix
        self.log(f"{key}/loss", loss, batch_size=n, sync_dist=True)
        self.log(f"{key}/cer", cer, prog_bar=True, batch_size=n)
        self.log(f"{key}/wer", wer, batch_size=n)
        self.log(f"{key}/acc", acc, prog_bar=stage == "val", batch_size=n)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning's "epoch" is the loop's index at saving: one less than the epochs trained for a
        # checkpoint saved at validation, equal for last.ckpt saved at the end of fit.
        if self._trainer is not None:  # a module saved outside a Trainer has no loop to count
            checkpoint["epochs_trained"] = self.trainer.fit_loop.epoch_progress.current.processed
        if self.run_info:
            checkpoint["htr_run"] = dict(self.run_info)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(self.hparams.warmup_steps, total // 2)
        kind = self.hparams.scheduler
        if kind == "none":
            return opt
        if kind == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.hparams.lr, total_steps=total)
        elif kind == "cosine":
            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                progress = min(1.0, (step - warmup) / max(1, total - warmup))
                return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        else:
            raise ValueError(f"model.scheduler: unknown {kind!r}; use none, cosine or onecycle")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The contents of a Lightning checkpoint of this project, with one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path}: not a Lightning checkpoint of this project (no state_dict/hyper_parameters)")
    return ckpt


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> HTRModule:
    """Load an HTRModule from a Lightning checkpoint, with one-line errors for bad files."""
    path = Path(path)
    ckpt = read_checkpoint(path, map_location)
    # LightningCLI stores private entries such as "_instantiator"; they are not arguments.
    hparams = {k: v for k, v in dict(ckpt["hyper_parameters"]).items() if not k.startswith("_")}
    try:
        module = HTRModule(**hparams)
    except TypeError as err:
        raise CheckpointError(f"{path}: hyper-parameters do not match this code's HTRModule ({err})") from None
    state = ckpt["state_dict"]
    own = module.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    if mismatched or missing:
        what = f"shape mismatch in {mismatched[:3]}" if mismatched else f"missing weights {missing[:3]}"
        raise CheckpointError(
            f"{path}: weights do not fit the architecture/charset stored in the checkpoint ({what}); "
            "was it written by another version of the model?"
        )
    module.load_state_dict(state, strict=False)
    module.run_info = dict(ckpt.get("htr_run") or {})
    module.provenance = checkpoint_provenance(path, ckpt)
    module.eval()
    return module.to(map_location)


# What a shipped checkpoint keeps: the weights, what rebuilds the model and its data settings, and
# where it came from (``htr_run``: run name, seed, commit, W&B id; epoch and step), so a report of
# a slimmed checkpoint names its provenance. Optimizer, scheduler, loop and callback states only
# serve resuming and triple the file.
SHIPPED_KEYS = (
    "state_dict", "hyper_parameters", "datamodule_hyper_parameters", "htr_run", "epoch", "epochs_trained", "global_step", "pytorch-lightning_version",
)


def slim_checkpoint(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Write ``src`` without its resume-only state to ``dst`` (atomically); returns what was kept.

    The result loads with :func:`load_checkpoint` exactly as ``src`` does and reports the same
    provenance; it cannot resume training."""
    ckpt = read_checkpoint(src)  # one read; what is not a checkpoint of this project: one line
    slim = {k: ckpt[k] for k in SHIPPED_KEYS if k in ckpt}
    buffer = io.BytesIO()
    torch.save(slim, buffer)
    atomic_write_bytes(dst, buffer.getvalue())
    return slim
