"""Read what an offline W&B run recorded (history rows), without network or the W&B service.

An offline run's ``run-*.wandb`` file is a LevelDB-style log of protobuf ``Record``s: a 7-byte
header (``:W&B``, magic, version) then 32 KiB blocks of chunks (crc32 4, length 2, type 1,
data). A resumed offline training reads its earlier legs' history here to continue at the next
W&B step (:mod:`htr.train.wandb_run`); the tests read runs back with it too (``tests/wandb_offline.py``).
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


def read_records(run_dir: str | Path) -> list[Any]:
    """The protobuf ``Record``s of an offline run folder ``.../wandb/offline-run-*``, in order."""
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


def record_items(items: Any) -> dict[str, Any]:
    """``{key: value}`` of a record's items (history rows, config updates; nested keys joined by ``/``)."""
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """History rows (``{key: value}``) of an offline run folder ``.../wandb/offline-run-*``."""
    return [record_items(r.history.item) for r in read_records(run_dir) if r.WhichOneof("record_type") == "history"]
