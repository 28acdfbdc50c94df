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


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """History rows (``{key: value}``) of an offline run folder ``.../wandb/offline-run-*``."""
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file")
    rows = []
    for raw in _records(files[0]):
        rec = pb.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "history":
            rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item})
    return rows


def latest_offline_run(parent: str | Path) -> Path:
    """The newest ``offline-run-*`` folder under ``parent`` (a run dir or its wandb/ folder)."""
    parent = Path(parent)
    runs = sorted((parent / "wandb").glob("offline-run-*")) or sorted(parent.glob("offline-run-*"))
    if not runs:
        raise FileNotFoundError(f"{parent}: no offline W&B run")
    return runs[-1]
