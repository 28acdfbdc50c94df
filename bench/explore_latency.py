"""Latency of the explorer over HTTP: a paint stroke -> updated scores, and relevance maps.

    python bench/explore_latency.py [CKPT ...] [--image docs/results/examples/are.png] [--strokes 30] [--maps 3] [--full]

Starts the explorer's server in this process (as ``python -m htr.explore`` does: one torch
thread per worker), then, like the page: POSTs /api/score with one more brush stroke each time
(a 3 px square dragged over 20 px: 20 rectangles) and measures the round trip until every
checkpoint's score, reading and frames are back (median of ``--strokes``); then starts 4x4
relevance jobs (``--full``: also one 1x1 job) and polls them every 20 ms until the maps are
back (median of ``--maps``), for one checkpoint and for all of them. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def call(url: str, path: str, body: object | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def stroke(k: int) -> str:
    """The k-th brush stroke: a 3 px gray square dragged right over 20 px, one row lower each time."""
    y = 2 + k % 28
    return ";".join(f"{x},{y},{x + 3},{y + 3}={(40 * k) % 256}" for x in range(60, 80))


def relevance_seconds(url: str, request: dict, window: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) from job start until the maps are back."""
    t0, c0 = time.perf_counter(), time.process_time()
    job = call(url, "/api/relevance", {**request, "window": window, "stride": window})
    while True:
        st = call(url, f"/api/job/{job['job']}")
        if st["done"]:
            if st["error"] or not st["maps"]:
                raise SystemExit(f"relevance failed: {st['error']}")
            return time.perf_counter() - t0, time.process_time() - c0
        time.sleep(0.02)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ckpts", nargs="*", default=["checkpoints/baseline.ckpt", "checkpoints/augmented.ckpt"])
    p.add_argument("--image", default="docs/results/examples/are.png")
    p.add_argument("--text", default="are")
    p.add_argument("--strokes", type=int, default=30)
    p.add_argument("--maps", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--full", action="store_true", help="also time one 1x1 map (slow)")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)  # as python -m htr.explore does
    from htr.explore.server import serve_in_thread
    from htr.explore.session import Explorer

    explorers = {}
    for label, ckpts in (("all", args.ckpts), ("one", args.ckpts[:1])):
        ex = Explorer([str(ROOT / c) if not Path(c).is_absolute() else c for c in ckpts], workers=args.workers)
        bad = [ck.error for ck in ex.checkpoints if ck.error]
        if bad:
            raise SystemExit(f"error: {bad[0]}")
        explorers[label] = (ex, serve_in_thread(ex))
    ex, server = explorers["all"]
    req = urllib.request.Request(server.url + "api/upload?name=word.png", data=Path(args.image).read_bytes(), method="POST")
    with urllib.request.urlopen(req) as resp:
        sid = json.loads(resp.read())["id"]

    def scored(edits: list[str]) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        res = call(server.url, "/api/score", {"source": sid, "text": args.text, "edits": edits, "shift": 0})
        dt = time.perf_counter() - t0, time.process_time() - c0
        assert all("edited" in m for m in res["models"]), res
        return dt

    for k in range(3):  # warm-up
        scored([stroke(k)])
    edits: list[str] = []
    times = []
    for k in range(args.strokes):
        edits.append(stroke(k))  # the page sends every stroke so far
        times.append(scored(edits))
    in_process = []
    for k in range(args.strokes):
        t0, c0 = time.perf_counter(), time.process_time()
        ex.score(sid, args.text, edits[: k + 1], 0)
        in_process.append((time.perf_counter() - t0, time.process_time() - c0))

    request = {"source": sid, "text": args.text, "edits": [stroke(0)], "shift": 0}
    rows = []
    n = len(args.ckpts)
    rows.append((f"paint stroke -> scores of {n} checkpoints (HTTP round trip, median of {args.strokes})", times))
    rows.append((f"same, in process (Explorer.score, median of {args.strokes})", in_process))
    for label in ("one", "all"):
        e, srv = explorers[label]
        up = urllib.request.Request(srv.url + "api/upload?name=word.png", data=Path(args.image).read_bytes(), method="POST")
        with urllib.request.urlopen(up) as resp:
            sid_l = json.loads(resp.read())["id"]
        r = {**request, "source": sid_l}
        relevance_seconds(srv.url, r, 8)  # warm-up
        secs = [relevance_seconds(srv.url, r, 4) for _ in range(args.maps)]
        k = len(e.checkpoints)
        rows.append((f"4x4 relevance map{'s' if k > 1 else ''} of {k} checkpoint{'s' if k > 1 else ''} (job start -> maps, median of {args.maps})", secs))
        if args.full:
            rows.append((f"1x1 relevance map{'s' if k > 1 else ''} of {k} checkpoint{'s' if k > 1 else ''} (one run)", [relevance_seconds(srv.url, r, 1)]))
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.workers} relevance workers x 1 torch thread, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    # CPU seconds tell the work apart from the waiting for a core on a shared machine.
    print("\n| what | median wall s | max wall s | median CPU s (this process) |\n|---|---:|---:|---:|")
    for what, runs in rows:
        walls = [w for w, _ in runs]
        print(f"| {what} | {statistics.median(walls):.3f} | {max(walls):.3f} | {statistics.median(c for _, c in runs):.3f} |")
    for e, srv in explorers.values():
        srv.shutdown()
        e.close()


if __name__ == "__main__":
    main()
