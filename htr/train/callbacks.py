"""Lightning callbacks: the diagnostics engine run on a fixed probe set during training, and the
training history (validation CER per epoch, wall time) that a run's metrics.json reports."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import pytorch_lightning as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from pytorch_lightning.loggers import WandbLogger  # noqa: E402

from htr.diagnostics.plots import plot_relevance, plot_shift  # noqa: E402
from htr.diagnostics.probes import Diagnosis, ProbeSet  # noqa: E402
from htr.diagnostics.scorer import CRNNScorer  # noqa: E402
from htr.diagnostics.settings import DiagnosticsSettings  # noqa: E402
from htr.errors import at_least  # noqa: E402
from htr.io import write_json  # noqa: E402

log = logging.getLogger(__name__)


class TrainingHistory(pl.Callback):
    """Validation CER/accuracy after every epoch and the training wall time, kept in checkpoints
    (``state_dict``) so that a resumed run reports its whole history, not only the last leg."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[dict[str, float]] = []
        self.seconds_before = 0.0  # wall time of earlier legs of a resumed run
        self._start: float | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    @property
    def wall_seconds(self) -> float:
        return self.seconds_before + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch, "wall_s": round(self.wall_seconds, 1)}
        for key in ("val/cer", "val/acc", "train/epoch_loss"):
            if key in metrics:
                row[key.replace("/", "_")] = float(metrics[key])
        self.epochs = [e for e in self.epochs if e["epoch"] != trainer.current_epoch] + [row]

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "wall_seconds": self.wall_seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs = list(state_dict.get("epochs", []))
        self.seconds_before = float(state_dict.get("wall_seconds", 0.0))

    def summary(self) -> dict[str, Any]:
        """What metrics.json records: epochs run, wall time, val CER per epoch and the last one.

        No convergence flag: under the cosine schedule the last epochs anneal and always show the
        largest fall, so a fall-based rule cannot tell an unconverged run; the study's budget
        check (a longer run beside the recipe's) can (htr.experiment.study_report.BudgetCheck)."""
        history = [e["val_cer"] for e in self.epochs if "val_cer" in e]
        return {
            "epochs_run": len(self.epochs),
            "wall_time_s": round(self.wall_seconds, 1),
            "val_cer_history": history,
            "final_val_cer": history[-1] if history else None,
        }


class DiagnosticsCallback(pl.Callback):
    """Every ``every_n_epochs`` validation epochs, at the end of fit and of test: diagnose the model.

    ``settings`` (:class:`DiagnosticsSettings`: probes, relevance window/stride, shift range,
    seed) are shared with evaluate.py and the study. The probe set is chosen from the settings'
    probe split (or loaded from ``probe_file``), saved to ``<run>/diagnostics/probes.{npz,json}``
    and reused when the run resumes, so every epoch and checkpoint is probed on the same images.
    Logged: ``diag/<score>`` scalars, relevance overlays and shift curves of the first
    ``figures`` probes as images with captions (text, score, prediction), a per-probe table;
    the same figures are written as PNG under ``<run>/diagnostics/<tag>/`` with ``scores.json``.
    Rank zero only.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        settings: DiagnosticsSettings | None = None,
        probe_file: str | None = None,
        figures: int = 4,
    ) -> None:
        super().__init__()
        at_least("every_n_epochs", every_n_epochs, 1)
        self.every_n_epochs = every_n_epochs
        self.settings = settings or DiagnosticsSettings()
        self.probe_file = probe_file
        self.figures = figures
        self.probes: ProbeSet | None = None
        self.seconds: list[float] = []
        self._last_tag: str | None = None
        self._tested: str | None = None

    def out_dir(self, trainer: pl.Trainer) -> Path:
        return Path(trainer.default_root_dir) / "diagnostics"

    def _probes(self, trainer: pl.Trainer) -> ProbeSet:
        if self.probes is None:
            saved = self.out_dir(trainer) / "probes"
            if self.probe_file:
                self.probes = ProbeSet.load(self.probe_file)
            elif saved.with_suffix(".npz").is_file():
                self.probes = ProbeSet.load(saved)
            else:
                self.probes = self.settings.choose_probes(trainer.datamodule.splits()[self.settings.probe_split])
                self.probes.save(saved)
        return self.probes

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self.run(trainer, pl_module, f"epoch_{trainer.current_epoch:03d}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        tag = f"epoch_{max(trainer.current_epoch - 1, 0):03d}"
        if self._last_tag != tag:
            self.run(trainer, pl_module, tag)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The probes are validation words: testing the same checkpoint on another split would
        # only repeat (and overwrite) the same diagnosis, so each checkpoint is diagnosed once.
        weights = trainer.ckpt_path or f"step {trainer.global_step}"
        if weights == self._tested:
            return
        self._tested = weights
        self.run(trainer, pl_module, "test")

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule, tag: str) -> Diagnosis | None:
        if not trainer.is_global_zero:
            return None
        start = time.perf_counter()
        probes = self._probes(trainer).aligned(pl_module.align)
        diag = self.settings.diagnose(CRNNScorer.of(pl_module), probes)
        figures = self.figures_of(diag, probes)
        out = self.out_dir(trainer) / tag
        out.mkdir(parents=True, exist_ok=True)
        for name, (fig, _caption) in figures.items():
            fig.savefig(out / f"{name}.png", dpi=100)
        write_json(out / "scores.json", {"epoch": trainer.current_epoch, "global_step": trainer.global_step, "scores": diag.to_flat(), "probes": diag.probe_rows(probes)})
        self.log_to_loggers(trainer, diag, probes, figures)
        self._last_tag = tag
        self.seconds.append(time.perf_counter() - start)
        scores = diag.scores
        log.info("diagnostics [%s] in %.1f s: acc drop@%d+ %.3f, periodicity@%d %.3f", tag, self.seconds[-1], scores.shift_threshold, scores.accuracy_drop, scores.period, scores.periodicity)
        return diag

    def figures_of(self, diag: Diagnosis, probes: ProbeSet) -> dict[str, tuple[Figure, str]]:
        figs: dict[str, tuple[Figure, str]] = {}
        for i in range(min(self.figures, len(probes))):
            sweep = diag.sweeps[i]
            caption = f"{probes.texts[i]!r}: score {sweep.scores[0]:.3f}, read {sweep.texts[0]!r}"
            if i < len(diag.relevance_maps):
                figs[f"relevance_{i:02d}"] = (plot_relevance(probes.canvases[i], diag.relevance_maps[i], probes.texts[i]), caption)
            figs[f"shift_{i:02d}"] = (plot_shift(sweep, probes.texts[i]), caption)
        return figs

    def log_to_loggers(self, trainer: pl.Trainer, diag: Diagnosis, probes: ProbeSet, figures: dict[str, tuple[Figure, str]]) -> None:
        step = trainer.global_step
        scalars = {f"diag/{k}": v for k, v in diag.to_flat().items() if math.isfinite(v)}
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=step)
            if isinstance(logger, WandbLogger):
                for kind in ("relevance", "shift"):
                    items = [(f, c) for n, (f, c) in figures.items() if n.startswith(kind)]
                    if items:
                        logger.log_image(key=f"diag/{kind}", images=[figure_to_array(f) for f, _ in items], caption=[c for _, c in items], step=step)
                # Through the logger, at Lightning's x-axis step (a resumed run's logger keeps W&B's steps going).
                logger.log_metrics(wandb_panels(diag, probes, self.figures), step=step)


def wandb_panels(diag: Diagnosis, probes: ProbeSet, curves: int = 4) -> dict[str, Any]:
    """W&B-native views of a diagnosis: the probe table (image, reading, score per row) and the
    shift curves as line plots that W&B draws, hovers and compares across runs."""
    import wandb

    rows = diag.probe_rows(probes)
    columns = ["image", *rows[0]]
    table = wandb.Table(columns=columns, data=[[wandb.Image(c), *r.values()] for c, r in zip(probes.canvases, rows)])
    n = min(curves, len(diag.sweeps))
    return {
        "diag/probes": table,
        "diag/shift_curve": wandb.plot.line_series(
            xs=[[int(v) for v in s.shifts] for s in diag.sweeps[:n]], ys=[[float(v) for v in s.scores] for s in diag.sweeps[:n]],
            keys=[repr(t) for t in probes.texts[:n]], title="p(text | image) vs shift right (px)", xname="shift (px)",
        ),
        "diag/accuracy_vs_shift": wandb.plot.line(
            wandb.Table(columns=["shift (px)", "probe word accuracy"], data=[[s, diag.scores.accuracy[s]] for s in diag.scores.shifts]),
            "shift (px)", "probe word accuracy", title="probe word accuracy vs shift",
        ),
    }


def figure_to_array(fig: Figure) -> Any:
    """RGB uint8 array of a matplotlib Figure (what W&B's Image takes)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
