"""The explorer's HTTP side: one static page and a small JSON API (standard library only).

GET  /                      the page (htr/explore/static/index.html)
GET  /api/state             checkpoints (or why one failed to load), probe words, limits
GET  /api/splits            data splits and their sizes;  GET /api/split/NAME?offset=&limit=  words
POST /api/load              {"source": "probe:3" | "split:val:12"} -> the word's canvas, text, max shift
POST /api/upload?name=F     raw image bytes -> the same for an uploaded image
POST /api/score             {"source", "text", "edits": [SPEC, ...], "shift"} -> per checkpoint
                            p(text), best-path reading, per-frame argmax; the edited canvas
POST /api/relevance         {... "window", "stride"} -> {"job": ID}; GET /api/job/ID polls
                            progress (?partial=1: the maps so far) and, once done, the maps;
                            POST /api/job/ID/cancel
POST /api/export            {"source", "text", "edits", "shift"} -> PNGs written, CLI commands

Bad input answers 4xx with {"error": "one line"}; an unexpected failure answers 500 with a
one-line error (the traceback goes to the server's stderr) and the server keeps serving.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from htr.diagnostics.relevance import RELEVANCE_WINDOW
from htr.errors import HTRError
from htr.explore.session import MAX_UPLOAD_BYTES, ExploreError, Explorer, RelevanceJob

STATIC = Path(__file__).parent / "static"
MAX_JSON_BYTES = 4 * 1024 * 1024  # edits of a long session of painting fit easily
MAX_DISCARD_BYTES = 256 * 1024 * 1024  # read (and drop) an oversized upload up to this, so the page gets the message
MAX_JOBS_KEPT = 20


class HTTPError(HTRError):
    """A request the explorer refuses: ``status`` and the one line the page shows (never leaves the server)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class ExplorerServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the :class:`Explorer` and the relevance jobs."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], explorer: Explorer, quiet: bool = True) -> None:
        self.explorer = explorer
        self.quiet = quiet
        self.jobs: dict[str, RelevanceJob] = {}
        self.jobs_lock = threading.Lock()
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start_job(self, job: RelevanceJob) -> None:
        """Keep ``job``; one map at a time, so an older one still running is cancelled."""
        with self.jobs_lock:
            for other in self.jobs.values():
                other.cancel()
            self.jobs[job.id] = job
            for old in list(self.jobs)[:-MAX_JOBS_KEPT]:
                del self.jobs[old]

    def job(self, job_id: str) -> RelevanceJob:
        with self.jobs_lock:
            if job_id not in self.jobs:
                raise HTTPError(HTTPStatus.NOT_FOUND, f"no relevance job {job_id!r} (finished long ago or never started)")
            return self.jobs[job_id]


class Handler(BaseHTTPRequestHandler):
    server: ExplorerServer
    protocol_version = "HTTP/1.1"

    # ---- plumbing -----------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if not self.server.quiet:
            super().log_message(format, *args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def _body(self, limit: int) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "bad Content-Length header") from None
        if length > limit:
            if length <= MAX_DISCARD_BYTES:  # drain it, so the browser reads our answer, not a reset
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            else:
                self.close_connection = True
            raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request too large ({length / 2**20:.1f} MiB > {limit // 2**20} MiB); upload a cropped word image")
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> dict[str, Any]:
        raw = self._body(MAX_JSON_BYTES)
        try:
            obj = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "request body is not JSON") from None
        if not isinstance(obj, dict):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
        return obj

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            self._route(method, url.path, parse_qs(url.query))
        except HTTPError as err:
            self._json({"error": str(err)}, err.status)
        except ExploreError as err:
            self._json({"error": str(err)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page went away mid-answer
        except Exception as err:  # noqa: BLE001 - never let one request stop the server
            traceback.print_exc(file=sys.stderr)
            self._json({"error": f"internal error: {type(err).__name__}: {err}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch("POST")

    # ---- routes -------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        ex = self.server.explorer
        if method == "GET" and path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8")
        elif method == "GET" and path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif method == "GET" and path == "/api/state":
            self._json(ex.state())
        elif method == "GET" and path == "/api/splits":
            self._json(ex.split_names())
        elif method == "GET" and path.startswith("/api/split/"):
            offset, limit = (_int_arg(query, k, d) for k, d in (("offset", 0), ("limit", 200)))
            self._json(ex.split_words(unquote(path.removeprefix("/api/split/")), max(0, offset), min(max(1, limit), 1000)))
        elif method == "GET" and path.startswith("/api/job/"):
            self._json(self.server.job(path.removeprefix("/api/job/")).status(partial=_int_arg(query, "partial", 0) == 1))
        elif method == "POST" and path == "/api/load":
            self._json(ex.source_info(ex.source(str(self._json_body().get("source", "")))))
        elif method == "POST" and path == "/api/upload":
            data = self._body(MAX_UPLOAD_BYTES)
            self._json(ex.source_info(ex.upload(data, (query.get("name") or ["upload.png"])[0])))
        elif method == "POST" and path == "/api/score":
            b = self._json_body()
            self._json(ex.score(str(b.get("source", "")), b.get("text"), b.get("edits", []), b.get("shift", 0)))
        elif method == "POST" and path == "/api/relevance":
            b = self._json_body()
            job = ex.relevance(str(b.get("source", "")), b.get("text"), b.get("edits", []), b.get("shift", 0), b.get("window", RELEVANCE_WINDOW), b.get("stride"))
            self.server.start_job(job)
            self._json(job.status())
        elif method == "POST" and path.startswith("/api/job/") and path.endswith("/cancel"):
            job = self.server.job(path.removeprefix("/api/job/").removesuffix("/cancel"))
            job.cancel()
            self._json(job.status())
        elif method == "POST" and path == "/api/export":
            b = self._json_body()
            out = ex.export(str(b.get("source", "")), b.get("text"), b.get("edits", []), b.get("shift", 0))
            print(f"exported {out['image']} (word image) and {out['edited']} (edited input); reproduce with:", *out["commands"], sep="\n  ", flush=True)
            self._json(out)
        else:
            raise HTTPError(HTTPStatus.NOT_FOUND, f"no such page or API: {method} {path}")


def _int_arg(query: dict[str, list[str]], key: str, default: int) -> int:
    raw = (query.get(key) or [str(default)])[0]
    try:
        return int(raw)
    except ValueError:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"{key} must be an integer, got {raw!r}") from None


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 8765, quiet: bool = True) -> ExplorerServer:
    """A bound (not yet serving) server; ``port=0`` picks a free port (see ``server.url``)."""
    return ExplorerServer((host, port), explorer, quiet)


def serve_in_thread(explorer: Explorer, host: str = "127.0.0.1", port: int = 0) -> ExplorerServer:
    """Start serving in a daemon thread (tests, benchmarks); stop with ``server.shutdown()``."""
    server = make_server(explorer, host, port)
    threading.Thread(target=server.serve_forever, daemon=True, name="explore-http").start()
    return server
