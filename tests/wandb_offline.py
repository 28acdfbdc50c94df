"""What the tests read back from offline W&B runs besides their history (htr.train.wandb_offline):
the run's identity and config, its exit code, the artifacts it staged, the newest run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from htr.train.wandb_offline import read_history, read_records, record_items

__all__ = ["latest_offline_run", "read_artifacts", "read_history", "read_run"]


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """What W&B shows of an offline run besides its history: id, name, group, job type, tags,
    config (later updates merged; values unwrapped from W&B's ``{"value": ...}``), exit code."""
    info: dict[str, Any] = {"config": {}, "exit_code": None}
    for rec in read_records(run_dir):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            info.update(id=r.run_id, name=r.display_name, group=r.run_group, job_type=r.job_type, tags=list(r.tags))
            info["config"].update(record_items(r.config.update))
        elif kind == "config":
            info["config"].update(record_items(rec.config.update))
        elif kind == "exit":
            info["exit_code"] = rec.exit.exit_code
    info["config"] = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in info["config"].items() if k != "_wandb"}
    return info


def latest_offline_run(parent: str | Path) -> Path:
    """The newest ``offline-run-*`` folder under ``parent`` (a run dir or its wandb/ folder)."""
    parent = Path(parent)
    runs = sorted((parent / "wandb").glob("offline-run-*")) or sorted(parent.glob("offline-run-*"))
    if not runs:
        raise FileNotFoundError(f"{parent}: no offline W&B run")
    return runs[-1]


def read_artifacts(run_dir: str | Path) -> list[dict[str, Any]]:
    """Artifacts an offline run staged (W&B keeps a logged table's rows and images in a
    ``run_table`` artifact): name, type and ``{path in artifact: local staged file}``."""
    out = []
    for rec in read_records(run_dir):
        if rec.WhichOneof("record_type") == "artifact":
            a = rec.artifact
            out.append({"name": a.name, "type": a.type, "files": {c.path: c.local_path for c in a.manifest.contents}})
    return out
