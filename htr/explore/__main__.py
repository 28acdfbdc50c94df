"""``python -m htr.explore CKPT [CKPT ...]``: serve the explorer on 127.0.0.1 and print its URL.

Bad checkpoints do not stop it: the page shows why each one failed. Bad arguments (a port in
use, a missing image) print one ``error:`` line and exit with status 2 (``htr.errors.run_main``).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path

from htr.argparsing import PlainArgumentParser, int_at_least
from htr.data.preprocess import load_image
from htr.errors import UsageError, run_main
from htr.explore.session import Explorer

LOG_LEVEL = logging.WARNING  # a server's console: its URL and warnings, no INFO chatter


def build_parser() -> argparse.ArgumentParser:
    p = PlainArgumentParser(prog="python -m htr.explore", description="Local web app: paint on a word, move it, and watch checkpoints read it.")
    p.add_argument("ckpts", nargs="+", metavar="CKPT", help="checkpoints to compare side by side")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_at_least(0, 65535), default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--probes", default="docs/results/probes.npz", help="probe set to pick words from (default: the study's)")
    p.add_argument("--data_root", default="data/synthetic", help="dataset whose splits the page lists (default data/synthetic)")
    p.add_argument("--data_source", default="synthetic", choices=("synthetic", "iam", "folder"), help="format of --data_root")
    p.add_argument("--image", help="word image to open first (else the first probe word)")
    p.add_argument("--export_dir", default="reports/explore", help="where 'export' writes PNGs (default reports/explore)")
    p.add_argument("--workers", type=int_at_least(1), default=2, help="threads computing relevance maps (default 2)")
    p.add_argument("--quiet", action=argparse.BooleanOptionalAction, default=True, help="no line per request (--no-quiet logs them)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: serve until Ctrl+C (exit status 0); bad input raises an ``HTRError``."""
    args = build_parser().parse_args(argv)
    if args.image:  # a missing or unreadable image fails before the slow checkpoint loading
        if not Path(args.image).is_file():
            raise UsageError(f"{args.image}: image file not found")
        load_image(args.image)
    import torch

    # Small batches: one intra-op thread per worker beats oversubscribing a busy CPU.
    torch.set_num_threads(1)
    from htr.explore.server import make_server

    explorer = Explorer(args.ckpts, probes=args.probes, data_root=args.data_root, data_source=args.data_source, export_dir=args.export_dir, workers=args.workers)
    for ck in explorer.checkpoints:
        print(f"{ck.name}: {'loaded' if ck.error is None else 'NOT loaded: ' + ck.error}")
    first = None
    if args.image:
        with open(args.image, "rb") as fh:
            first = explorer.upload(fh.read(), args.image).id
    try:
        server = make_server(explorer, args.host, args.port, quiet=args.quiet)
    except OSError as err:
        explorer.close()
        raise UsageError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err}); pass --port 0 for a free port") from None
    if not _is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can use the explorer", file=sys.stderr)
    url = server.url + (f"?source={first}" if first else "")
    print(f"explorer: {url}  (Ctrl+C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        explorer.close()
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


if __name__ == "__main__":
    run_main(main, prog="python -m htr.explore", log_level=LOG_LEVEL)
