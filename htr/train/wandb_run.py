"""One W&B run per training: a resumed training (the same command again, or a requeued job)
continues its W&B run, offline or online, and its W&B steps go on where they stopped.

The run's W&B identity and what it logged live in ``runs/<name>/wandb_run.json``: the run id and
one entry per logged row (W&B step, ``trainer/global_step``, keys), written before the row is
handed to W&B. A resumed leg keeps the entries W&B holds: those below the W&B step it would
continue at (online: the server's; offline: one past the last row in the earlier legs'
``offline-run-*`` folders; a killed process loses the rows W&B had not written yet). The leg
restarts from its last checkpoint (an epoch's end), so it replays steps the interrupted leg had
logged: a key is not logged again at or before the last step W&B holds it at, and a lost row is
logged again. Each offline leg is its own folder with the same run id and steps that continue;
``wandb sync runs/<name>/wandb/offline-run-*`` uploads them in order as one run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from htr.io import write_json
from htr.train.wandb_offline import read_history

log = logging.getLogger(__name__)

STATE_FILE = "wandb_run.json"  # in the run folder


@dataclass
class WandbRunState:
    """A training's W&B run: its id and every row logged to it, ``[W&B step, trainer step or None, keys]``."""

    id: str
    rows: list[list[Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> WandbRunState | None:
        """The state saved at ``path``; None if there is none (or it is unreadable: then a new W&B run starts)."""
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as err:
            log.warning("%s: unreadable (%s); this training starts a new W&B run", path, err)
            return None

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))

    @property
    def next_step(self) -> int:
        return self.rows[-1][0] + 1 if self.rows else 0

    def held(self, next_step: int) -> WandbRunState:
        """The rows that W&B holds when it continues at ``next_step`` (it writes rows in order)."""
        return WandbRunState(self.id, [r for r in self.rows if r[0] < next_step])

    def last_steps(self) -> dict[str, int]:
        """Per key, the last trainer step it was logged at."""
        return {k: step for _, step, keys in self.rows if step is not None for k in keys}


def offline_next_step(wandb_dir: Path, run_id: str) -> int:
    """One past the last W&B step that the offline folders of run ``run_id`` under ``wandb_dir`` hold (0 if none)."""
    return max((int(row["_step"]) + 1 for folder in sorted(wandb_dir.glob(f"offline-run-*-{run_id}")) for row in read_history(folder) if "_step" in row), default=0)


class ResumableWandbLogger(WandbLogger):
    """Lightning's W&B logger that continues the run saved in ``state_file`` (if ``resume`` and there is
    one) and gives every row an explicit W&B step that continues across legs (offline W&B would
    restart at 0). Every row goes through :meth:`log_metrics` (Lightning's own, images, tables and
    the diagnostics callback's panels)."""

    def __init__(self, state_file: Path, resume: bool, **kwargs: Any) -> None:
        self._state = WandbRunState.load(state_file) if resume else None
        self._offline = kwargs.get("mode") == "offline"
        if self._state and self._offline:  # before this leg's own folder exists
            self._state = self._state.held(offline_next_step(Path(kwargs.get("save_dir") or ".") / "wandb", self._state.id))
        super().__init__(id=self._state.id if self._state else None, **kwargs)  # Lightning asks W&B for resume="allow"
        self._state_file = state_file
        self._earlier: dict[str, int] = {}  # what earlier legs logged (set when the run starts)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        started = self._experiment is not None
        run = super().experiment
        if started:
            return run
        if self._state is None or self._state.id != run.id:
            self._state = WandbRunState(run.id)
        elif run.resumed and not self._offline:  # online: the server says where the run stands
            self._state = self._state.held(run.starting_step)
        if self._state.rows:
            log.info("continuing W&B run %s at step %d", run.id, self._state.next_step)
        self._earlier = self._state.last_steps()
        self._state.save(self._state_file)
        return run

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        run = self.experiment
        # A step an earlier leg logged already (the resumed leg replays from its checkpoint) is not logged twice.
        fresh = {k: v for k, v in metrics.items() if step is None or self._earlier.get(k, -1) < step}
        if not fresh:
            return
        wandb_step = self._state.next_step
        self._state.rows.append([wandb_step, step, sorted(fresh)])
        self._state.save(self._state_file)  # first: W&B never holds a row the state does not know of
        run.log({**fresh, **({"trainer/global_step": step} if step is not None else {})}, step=wandb_step)
