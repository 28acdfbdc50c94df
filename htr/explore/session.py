"""The explorer's model work, without HTTP: word sources, scores of edited/shifted canvases,
relevance maps in chunks (for progress), and the export that reproduces an edit on the CLI.

The page keeps the state: a request names a source (a word image, preprocessed once by the
project's ``load_image``/``to_canvas``), a target text, the edits (``htr.diagnostics.edits``
specs, e.g. ``40,0,48,6=0``) and a right shift; everything is recomputed from them. Scores come
from :func:`htr.diagnostics.edits.edit` with one ``Edit`` holding all strokes, i.e. the same
call and batch as ``python -m htr.diagnostics edit CKPT IMAGE --text T --set SPEC``, so the
page and the CLI print the same number. Each column is a :class:`htr.diagnostics.scorer.TextScorer`:
a checkpoint's :class:`CRNNScorer`, or any scorer given to :class:`Explorer` (an own model).
"""

from __future__ import annotations

import base64
import io
import itertools
import logging
import shlex
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from htr.data.preprocess import HEIGHT, WIDTH, Alignment, ImageError, load_image, to_canvas
from htr.diagnostics.edits import Edit, EditSpecError, edit, parse_edit
from htr.diagnostics.relevance import RELEVANCE_WINDOW, Perturbations, make_perturbations, perturbation_log_scores, weight_of_evidence, windows_to_pixels
from htr.diagnostics.scorer import CRNNScorer, TextScorer, check_text
from htr.diagnostics.shift import max_shift_for, shift_right
from htr.errors import HTRError
from htr.text import Charset, ctc_min_frames

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000  # ~ a 8000 x 5000 photo; to_canvas shrinks words to 32x128 anyway
MAX_TEXT_CHARS = 64
MAX_PRIMITIVES = 20_000
MAX_UPLOADS_KEPT = 50


class ExploreError(HTRError, ValueError):
    """Bad input from the page; the message is shown there as it is."""


def score_text(score: float) -> str:
    """A score as ``python -m htr.diagnostics edit`` prints it (4 significant digits)."""
    return f"{score:.4g}"


@dataclass
class Checkpoint:
    """One column of the page: a checkpoint's scorer (or any scorer), or the one-line reason why not."""

    path: str | None  # None: a scorer given directly (no checkpoint file, no export command)
    name: str
    scorer: TextScorer | None = None
    align: Alignment = "left"  # where the model reads words (a checkpoint's ``align``)
    error: str | None = None

    @property
    def charset(self) -> Charset:
        return self.scorer.charset


@dataclass(frozen=True)
class Source:
    """A word to explore: the gray image as a file holds it, and its preprocessed canvas."""

    id: str
    label: str
    image: np.ndarray  # 2-D uint8, before preprocessing (what an exported file holds)
    canvas: np.ndarray  # to_canvas(image): the 32x128 model input at shift 0
    text: str  # ground truth where known, else ""
    stem: str  # file-name stem for exports


def load_checkpoints(paths: Sequence[str]) -> list[Checkpoint]:
    """Load every checkpoint; a bad one keeps its error message instead of stopping the others."""
    from htr.model.module import CheckpointError, load_checkpoint  # Lightning import only when needed

    names = [Path(p).stem for p in paths]
    out = []
    for path, name in zip(paths, names):
        if names.count(name) > 1:  # e.g. two runs' last.ckpt: tell them apart by their folder
            name = str(Path(path).with_suffix(""))
        try:
            module = load_checkpoint(path)
            out.append(Checkpoint(path, name, CRNNScorer.of(module), module.align))
        except CheckpointError as err:
            out.append(Checkpoint(path, name, error=str(err)))
    return out


def encode_canvas(canvas: np.ndarray) -> str:
    """Row-major uint8 pixels, base64 (the page paints them with putImageData)."""
    return base64.b64encode(np.ascontiguousarray(canvas, dtype=np.uint8).tobytes()).decode("ascii")


def _result(r: Any) -> dict[str, Any]:
    finite = bool(np.isfinite(r.log_score))
    return {"score": r.score, "score_text": score_text(r.score), "log_score": r.log_score if finite else None, "reading": r.recognized}


def split_chunks(pert: Perturbations, n_chunks: int) -> list[Perturbations]:
    """The windows in ``n_chunks`` runs of whole window columns (their order is kept).

    Why columns: the incremental CNN recomputes per column range; splitting a column between
    chunks would recompute its strip twice.
    """
    x0 = pert.windows[:, 2]
    starts = np.flatnonzero(np.r_[True, x0[1:] != x0[:-1]])  # first window of each column
    groups = np.array_split(np.arange(len(starts)), max(1, min(n_chunks, len(starts))))
    bounds = [int(starts[g[0]]) for g in groups if len(g)] + [len(pert.windows)]
    return [Perturbations(pert.windows[a:b], pert.values[a:b], pert.weights[a:b]) for a, b in zip(bounds, bounds[1:])]


class RelevanceJob:
    """Relevance maps of one canvas under every checkpoint, computed chunk by chunk in a pool.

    The map is the diagnostics' own: seed defaults of :func:`make_perturbations` (gray levels
    {0, 63, 127, 191, 255}, uniform weights), :func:`perturbation_log_scores` per chunk of
    windows, then :func:`weight_of_evidence` and :func:`windows_to_pixels` over all windows,
    which is :func:`htr.diagnostics.relevance.relevance` cut into pieces for progress and
    cancelling.
    """

    def __init__(self, checkpoints: Sequence[Checkpoint], canvas: np.ndarray, text: str, window: int, stride: int, pool: ThreadPoolExecutor, chunk_columns: int = 4) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.window, self.stride, self.text = window, stride, text
        self.canvas = canvas
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self.done = 0
        self.started = time.perf_counter()
        self.elapsed: float | None = None
        self.maps: list[dict[str, Any]] | None = None
        self.error: str | None = None
        self._plans: list[tuple[Checkpoint, Perturbations | None, list[Perturbations], str | None]] = []
        self._finished: dict[int, list[tuple[Perturbations, float, np.ndarray]]] = {}  # per model: chunks done
        for ck in checkpoints:
            err = ck.error or _text_error(text, ck)
            if err:
                self._plans.append((ck, None, [], err))
                continue
            pert = make_perturbations(canvas, window, stride)
            n_columns = len(np.unique(pert.windows[:, 2]))
            self._plans.append((ck, pert, split_chunks(pert, -(-n_columns // chunk_columns)), None))
        self.total = sum(len(p[2]) for p in self._plans)
        self._thread = threading.Thread(target=self._run, args=(pool,), daemon=True, name=f"relevance-{self.id}")
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _chunk(self, m: int, ck: Checkpoint, chunk: Perturbations) -> tuple[float, np.ndarray] | None:
        if self.cancelled:
            return None
        out = perturbation_log_scores(ck.scorer, self.canvas, self.text, chunk)
        with self._lock:
            self.done += 1
            self._finished.setdefault(m, []).append((chunk, *out))
        return out

    def _run(self, pool: ThreadPoolExecutor) -> None:
        try:
            futures = [[pool.submit(self._chunk, m, ck, c) for c in chunks] for m, (ck, _, chunks, _) in enumerate(self._plans)]
            maps = []
            for (ck, pert, _, err), fs in zip(self._plans, futures):
                if err:
                    maps.append({"name": ck.name, "error": err})
                    continue
                parts = [f.result() for f in fs]
                if self.cancelled or any(p is None for p in parts):
                    return
                clean = parts[0][0]
                we = weight_of_evidence(clean, np.concatenate([p[1] for p in parts]), pert.weights)
                rel = windows_to_pixels(we, pert.windows, self.canvas.shape)
                maps.append({"name": ck.name, "map": np.round(rel, 5).ravel().tolist(), "min": float(rel.min()), "max": float(rel.max())})
            self.maps = maps
        except Exception as err:  # noqa: BLE001 - reported to the page; the server keeps running
            self.error = f"relevance failed: {type(err).__name__}: {err}"
        finally:
            self.elapsed = time.perf_counter() - self.started

    def partial_maps(self) -> list[list[float | None] | None]:
        """Per checkpoint, the map over the windows done so far (None where none is done yet).

        Why: a map appears column by column instead of after the last chunk. With overlapping
        windows (stride < window) pixels at the edge of the done part are provisional.
        """
        with self._lock:
            finished = {m: list(v) for m, v in self._finished.items()}
        out: list[list[float | None] | None] = []
        for m in range(len(self._plans)):
            done = finished.get(m)
            if not done:
                out.append(None)
                continue
            windows = np.concatenate([c.windows for c, _, _ in done])
            we = weight_of_evidence(done[0][1], np.concatenate([sc for _, _, sc in done]), np.concatenate([c.weights for c, _, _ in done]))
            rel = np.round(windows_to_pixels(we, windows, self.canvas.shape), 5).ravel()
            covered = windows_to_pixels(np.ones(len(windows)), windows, self.canvas.shape).ravel() > 0
            out.append([float(v) if c else None for v, c in zip(rel, covered)])
        return out

    def status(self, partial: bool = False) -> dict[str, Any]:
        running = self._thread.is_alive()
        out: dict[str, Any] = {
            "job": self.id,
            "window": self.window,
            "stride": self.stride,
            "progress": self.done / self.total if self.total else 1.0,
            "done": not running,
            "cancelled": self.cancelled,
            "seconds": round(self.elapsed if self.elapsed is not None else time.perf_counter() - self.started, 3),
        }
        if not running:
            out.update(maps=self.maps, error=self.error)
        elif partial:
            out["partial"] = self.partial_maps()
        return out


def _text_error(text: str, ck: Checkpoint) -> str | None:
    try:
        check_text(text, ck.charset)
    except ValueError as err:
        return str(err)
    return None


class Explorer:
    """Checkpoints, word sources and the computations behind the page."""

    def __init__(
        self,
        checkpoints: Sequence[str | Path],
        probes: str | Path | None = None,
        data_root: str | Path | None = None,
        data_source: str = "synthetic",
        export_dir: str | Path = "reports/explore",
        workers: int = 2,
        scorers: Mapping[str, TextScorer] | None = None,
    ) -> None:
        """``checkpoints``: the project's checkpoint files; ``scorers``: more columns, name -> any
        :class:`TextScorer` (an own model, reading words placed at the left edge)."""
        self.checkpoints = load_checkpoints([str(p) for p in checkpoints]) + [Checkpoint(None, n, sc) for n, sc in (scorers or {}).items()]
        # One canvas is scored by every checkpoint: words sit where the first one reads them.
        aligns = {ck.name: ck.align for ck in self.checkpoints if ck.scorer is not None}
        self.align = next(iter(aligns.values()), "left")
        if len(set(aligns.values())) > 1:
            log.warning("checkpoints read words placed differently (%s); the page places them %s, as %s does",
                        ", ".join(f"{n}: {a}" for n, a in aligns.items()), self.align, next(iter(aligns)))
        self.probes_path = Path(probes) if probes else None
        self.data_root = Path(data_root) if data_root else None
        self.data_source = data_source
        self.export_dir = Path(export_dir)
        self.workers = max(1, workers)
        self._sources: OrderedDict[str, Source] = OrderedDict()
        self._lock = threading.Lock()
        self._upload_ids = itertools.count(1)
        self._probes: Any = None  # ProbeSet, loaded on first use
        self._splits: dict[str, list[Any]] | None = None
        # Chunks of relevance maps; scoring gets its own threads so that it never queues behind them.
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="relevance")
        self._score_pool = ThreadPoolExecutor(max(1, len(self.checkpoints)), thread_name_prefix="score")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._score_pool.shutdown(wait=False, cancel_futures=True)

    # ---- sources ------------------------------------------------------------------------
    def _add(self, src: Source) -> Source:
        with self._lock:
            self._sources[src.id] = src
            self._sources.move_to_end(src.id)
            uploads = [k for k in self._sources if k.startswith("upload:")]
            for k in uploads[:-MAX_UPLOADS_KEPT]:
                del self._sources[k]
        return src

    def _from_image(self, sid: str, label: str, image: np.ndarray, text: str, stem: str) -> Source:
        try:
            canvas = to_canvas(image, self.align)  # the project's one preprocessing path
        except (ImageError, ValueError) as err:
            raise ExploreError(f"{label}: {err}") from None
        return self._add(Source(sid, label, image, canvas, text, stem))

    def probes(self) -> Any:
        """The saved probe set (``ProbeSet``); ExploreError if there is none."""
        from htr.diagnostics.probes import ProbeError, ProbeSet

        if self._probes is None:
            if self.probes_path is None:
                raise ExploreError("no probe set given (start with --probes PATH.npz)")
            try:
                self._probes = ProbeSet.load(self.probes_path)
            except (ProbeError, OSError, ValueError, KeyError) as err:
                raise ExploreError(f"probe set {self.probes_path}: {err}") from None
        return self._probes

    def splits(self) -> dict[str, list[Any]]:
        """Samples per data split, read by the project's DataModule (nothing is generated)."""
        if self._splits is None:
            if self.data_root is None:
                raise ExploreError("no data root given (start with --data_root DIR)")
            from htr.data.datamodule import WordDataModule
            from htr.data.readers import DatasetError

            try:
                dm = WordDataModule(source=self.data_source, root=str(self.data_root), validate_images=False, num_workers=0)
                self._splits = dm.splits()
            except (DatasetError, OSError, ValueError) as err:
                hint = " (the embedded data is generated by train.py or evaluate.py on first use)" if self.data_source == "synthetic" else ""
                raise ExploreError(f"no data splits: {err}{hint}") from None
        return self._splits

    def source(self, sid: str) -> Source:
        """A known source, loading probe/split words on demand (ids ``probe:I``, ``split:NAME:I``)."""
        with self._lock:
            if sid in self._sources:
                return self._sources[sid]
        kind, _, rest = str(sid).partition(":")
        if kind == "probe" and rest.isdigit():
            ps = self.probes()
            i = int(rest)
            if i >= len(ps):
                raise ExploreError(f"probe {i} does not exist (the probe set has {len(ps)} words: 0..{len(ps) - 1})")
            return self._from_image(sid, f"probe {i} ({ps.ids[i]})", ps.aligned(self.align).canvases[i], ps.texts[i], f"probe{i:03d}")
        if kind == "split":
            name, _, idx = rest.rpartition(":")
            splits = self.splits()
            if name not in splits:
                raise ExploreError(f"no split {name!r} (have: {', '.join(sorted(splits))})")
            if not idx.isdigit() or int(idx) >= len(splits[name]):
                raise ExploreError(f"split {name!r} has words 0..{len(splits[name]) - 1}, not {idx!r}")
            s = splits[name][int(idx)]
            try:
                image = load_image(s.path)
            except ImageError as err:
                raise ExploreError(str(err)) from None
            return self._from_image(sid, f"{name} {idx} ({s.id})", image, s.text, f"{name}{int(idx):05d}")
        raise ExploreError(f"unknown word {sid!r}: load one from the probe set, a split or an upload")

    def upload(self, data: bytes, filename: str = "upload.png") -> Source:
        """An uploaded image file through ``load_image`` + ``to_canvas``; clear errors for bad files."""
        name = Path(filename or "upload.png").name or "upload.png"
        if not data:
            raise ExploreError(f"{name}: empty file (0 bytes)")
        if len(data) > MAX_UPLOAD_BYTES:
            raise ExploreError(f"{name}: file too large ({len(data) / 2**20:.1f} MiB > {MAX_UPLOAD_BYTES // 2**20} MiB); upload a cropped word image")
        # The header gives the size without decoding: refuse a huge image before it takes memory.
        try:
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
        except Image.DecompressionBombError:
            raise ExploreError(f"{name}: image too large to decode safely; upload a cropped word image") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise ExploreError(f"{name}: not an image (Pillow cannot read it); upload a word image such as a PNG or JPEG") from None
        if w * h > MAX_UPLOAD_PIXELS:
            raise ExploreError(f"{name}: image too large ({w} x {h} = {w * h / 1e6:.0f} Mpx > {MAX_UPLOAD_PIXELS / 1e6:.0f} Mpx); upload a cropped word image")
        with tempfile.TemporaryDirectory(prefix="htr-explore-") as tmp:
            path = Path(tmp) / ("upload" + Path(name).suffix[:10])
            path.write_bytes(data)
            try:
                image = load_image(path)
            except ImageError as err:
                raise ExploreError(str(err).replace(str(path), name)) from None
        n = next(self._upload_ids)
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(name).stem)[:40] or "upload"
        return self._from_image(f"upload:{n}", f"upload {name}", image, "", stem)

    def source_info(self, src: Source) -> dict[str, Any]:
        text = src.text
        if not text:  # unknown ground truth: start from the first model's reading
            first = next((ck for ck in self.checkpoints if ck.error is None), None)
            if first is not None:
                text = _reading(first, src.canvas)
        return {"id": src.id, "label": src.label, "text": text, "truth": src.text, "canvas": encode_canvas(src.canvas), "max_shift": max_shift_for(src.canvas)}

    # ---- edits, scores ------------------------------------------------------------------
    def render(self, source_id: str, edits: Sequence[str], shift: int) -> tuple[Source, np.ndarray, Edit | None]:
        """(source, shifted canvas, the edit made of all ``edits`` or None)."""
        src = self.source(source_id)
        top = max_shift_for(src.canvas)
        if not isinstance(shift, int) or isinstance(shift, bool) or not 0 <= shift <= top:
            raise ExploreError(f"shift must be an integer in 0..{top} px for this word (the room right of its ink), got {shift!r}")
        canvas = shift_right(src.canvas, shift) if shift else src.canvas
        if not isinstance(edits, (list, tuple)) or not all(isinstance(e, str) for e in edits):
            raise ExploreError("edits must be a list of edit specs (strings)")
        specs = [e for e in edits if e.strip()]
        if not specs:
            return src, canvas, None
        spec = ";".join(specs)
        if spec.count(";") + 1 > MAX_PRIMITIVES:
            raise ExploreError(f"too many edit primitives (> {MAX_PRIMITIVES}); undo some strokes or export and start again")
        try:
            return src, canvas, parse_edit(spec)
        except EditSpecError as err:
            raise ExploreError(str(err)) from None

    def check_text(self, text: Any) -> str:
        if not isinstance(text, str) or not text:
            raise ExploreError("type the text whose score you want to see (it is empty)")
        if len(text) > MAX_TEXT_CHARS:
            raise ExploreError(f"text too long ({len(text)} characters > {MAX_TEXT_CHARS}; the model has 32 frames)")
        if any(c in text for c in "\t\r\n"):
            raise ExploreError("the text must be one line without tabs")
        return text

    def score(self, source_id: str, text: str, edits: Sequence[str] = (), shift: int = 0) -> dict[str, Any]:
        """Score, reading and per-frame argmax of the (shifted, edited) word under every checkpoint."""
        text = self.check_text(text)
        src, canvas, ed = self.render(source_id, edits, shift)
        edited = ed.apply(canvas) if ed else canvas
        futures: list[Future] = [self._score_pool.submit(self._score_one, ck, canvas, text, ed) for ck in self.checkpoints]
        return {
            "source": src.id,
            "text": text,
            "shift": shift,
            "max_shift": max_shift_for(src.canvas),
            "spec": str(ed) if ed else "",
            "canvas": encode_canvas(edited),
            "frames_note": None if ctc_min_frames(text) <= 32 else "the text needs more than 32 CTC frames: its score is 0",
            "models": [f.result() for f in futures],
        }

    def _score_one(self, ck: Checkpoint, canvas: np.ndarray, text: str, ed: Edit | None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": ck.name, "path": ck.path}
        err = ck.error or _text_error(text, ck)
        if err:
            return {**out, "error": err}
        # The frames under the image come from the very forward pass that gave the score.
        results = edit(ck.scorer, canvas, text, [ed] if ed else [], frames=True)
        return {**out, "original": _result(results[0]), "edited": _result(results[-1]), "frames": results[-1].frames or []}

    def relevance(self, source_id: str, text: str, edits: Sequence[str] = (), shift: int = 0, window: int = RELEVANCE_WINDOW, stride: int | None = None) -> RelevanceJob:
        """Start relevance maps of the (shifted, edited) word under every checkpoint."""
        text = self.check_text(text)
        stride = window if stride is None else stride
        for name, v in (("window", window), ("stride", stride)):
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= HEIGHT:
                raise ExploreError(f"{name} must be an integer in 1..{HEIGHT}, got {v!r}")
        _, canvas, ed = self.render(source_id, edits, shift)
        return RelevanceJob(self.checkpoints, ed.apply(canvas) if ed else canvas, text, window, stride, self.pool)

    # ---- export -------------------------------------------------------------------------
    def export(self, source_id: str, text: str, edits: Sequence[str] = (), shift: int = 0) -> dict[str, Any]:
        """Write the word image and the edited canvas as PNGs; the commands that reproduce the edit.

        The image written is what ``edit`` must read to rebuild this canvas: the source image
        itself at shift 0, the shifted 32x128 canvas otherwise (the CLI has no shift). The
        command's canvas is checked here with the CLI's own preprocessing.
        """
        text = self.check_text(text)
        src, canvas, ed = self.render(source_id, edits, shift)
        self.export_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{src.stem}-shift{shift}" if shift else src.stem
        for n in itertools.count(1):
            image_path = self.export_dir / f"{stem}-{n:03d}.png"
            if not image_path.exists():
                break
        edited_path = image_path.with_name(image_path.stem + "-edited.png")
        Image.fromarray(src.image if shift == 0 else canvas, mode="L").save(image_path)
        Image.fromarray(ed.apply(canvas) if ed else canvas, mode="L").save(edited_path)
        reproduced = bool(np.array_equal(to_canvas(load_image(image_path), self.align), canvas))
        commands = []
        for ck in self.checkpoints:
            if ck.error is None and ck.path is not None:
                figure = image_path.with_name(f"{image_path.stem}-edits-{Path(ck.path).stem}.png")
                cmd = ["python", "-m", "htr.diagnostics", "edit", ck.path, str(image_path), "--text", text]
                cmd += ["--set", str(ed)] if ed else []
                commands.append(shlex.join(cmd + ["--out", str(figure)]))
        return {
            "image": str(image_path),
            "edited": str(edited_path),
            "spec": str(ed) if ed else "",
            "commands": commands,
            "reproduced": reproduced,
            "note": None if reproduced else "the CLI's preprocessing of the exported image does not give back this canvas exactly; its score may differ",
        }

    def state(self) -> dict[str, Any]:
        """What the page needs at start: checkpoints (or their errors), sources, limits."""
        probes: dict[str, Any]
        try:
            ps = self.probes()
            probes = {"words": [{"i": i, "id": pid, "text": t} for i, (pid, t) in enumerate(zip(ps.ids, ps.texts))]}
        except ExploreError as err:
            probes = {"error": str(err)}
        return {
            "checkpoints": [{"name": ck.name, "path": ck.path, "error": ck.error, "charset": ck.charset.chars if ck.error is None else None} for ck in self.checkpoints],
            "probes": probes,
            "data_root": str(self.data_root) if self.data_root else None,
            "limits": {"upload_bytes": MAX_UPLOAD_BYTES, "upload_pixels": MAX_UPLOAD_PIXELS, "text_chars": MAX_TEXT_CHARS},
            "size": {"height": HEIGHT, "width": WIDTH},
        }

    def split_words(self, name: str, offset: int = 0, limit: int = 200) -> dict[str, Any]:
        splits = self.splits()
        if name not in splits:
            raise ExploreError(f"no split {name!r} (have: {', '.join(sorted(splits))})")
        samples = splits[name]
        return {"split": name, "count": len(samples), "offset": offset, "words": [{"i": i, "id": s.id, "text": s.text} for i, s in enumerate(samples[offset : offset + limit], offset)]}

    def split_names(self) -> dict[str, Any]:
        try:
            return {"splits": {k: len(v) for k, v in sorted(self.splits().items())}}
        except ExploreError as err:
            return {"splits": {}, "error": str(err)}


def _reading(ck: Checkpoint, canvas: np.ndarray) -> str:
    """Best-path reading of a canvas."""
    # A scorer always scores some text; the reading does not depend on which.
    return ck.scorer.score(canvas, ck.charset.chars[0]).readings[0]
