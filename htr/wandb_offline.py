"""Read what an offline W&B run recorded (history rows), without network or the W&B service.

An offline run's ``run-*.wandb`` file is a LevelDB-style log of protobuf ``Record``s: a 7-byte
header (``:W&B``, magic, version) then 32 KiB blocks of chunks (crc32 4, length 2, type 1,
data). Used by the tests and to peek at a running training's metrics.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    out, pos, parts = [], HEADER, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if pos + 7 + length > len(data):  # the writer was killed mid-chunk: what came before is whole
            break
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            parts = chunk
        elif kind == MIDDLE:
            parts += chunk
        elif kind == LAST:
            out.append(parts + chunk)
            parts = b""
    return out


def _parsed(run_dir: str | Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file")
    out = []
    for raw in _records(files[0]):
        rec = pb.Record()
        rec.ParseFromString(raw)
        out.append(rec)
    return out


def _items(items: Any) -> dict[str, Any]:
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """History rows (``{key: value}``) of an offline run folder ``.../wandb/offline-run-*``."""
    return [_items(r.history.item) for r in _parsed(run_dir) if r.WhichOneof("record_type") == "history"]


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """What W&B shows of an offline run besides its history: id, name, group, job type, tags,
    config (later updates merged; values unwrapped from W&B's ``{"value": ...}``), exit code."""
    info: dict[str, Any] = {"config": {}, "exit_code": None}
    for rec in _parsed(run_dir):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            info.update(id=r.run_id, name=r.display_name, group=r.run_group, job_type=r.job_type, tags=list(r.tags))
            info["config"].update(_items(r.config.update))
        elif kind == "config":
            info["config"].update(_items(rec.config.update))
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
    for rec in _parsed(run_dir):
        if rec.WhichOneof("record_type") == "artifact":
            a = rec.artifact
            out.append({"name": a.name, "type": a.type, "files": {c.path: c.local_path for c in a.manifest.contents}})
    return out
