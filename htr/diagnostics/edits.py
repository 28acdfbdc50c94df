"""Pixel edits of a canvas and their effect on the score (the seed article's Fig. 3).

Edit specs (coordinates in canvas pixels, x = column, y = row, VALUE = gray 0..255):

* ``X0,Y0,X1,Y1=VALUE``             rectangle, inclusive-exclusive: columns X0..X1-1, rows Y0..Y1-1
* ``px:X,Y[,X,Y...]=VALUE``         the listed pixels
* ``dot:X,Y,R=VALUE``               filled disc of radius R centred on (X, Y) (``cv2.circle``)
* ``line:X0,Y0,X1,Y1,W=VALUE``      stroke of width W from (X0, Y0) to (X1, Y1) (``cv2.line``)

Several primitives joined by ``;`` form one edit (applied in order), e.g.
``dot:20,3,1=0;40,0,48,8=255``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from htr.diagnostics.scorer import TextScorer
from htr.errors import HTRError
from htr.text import Charset


class EditSpecError(HTRError, ValueError):
    """An edit spec that cannot be parsed; the message says what the valid forms are."""


SPEC_HELP = "X0,Y0,X1,Y1=V | px:X,Y[,X,Y..]=V | dot:X,Y,R=V | line:X0,Y0,X1,Y1,W=V (join with ';')"


@dataclass(frozen=True)
class Rect:
    """Columns x0..x1-1, rows y0..y1-1 set to ``value``."""

    x0: int
    y0: int
    x1: int
    y1: int
    value: int

    def apply(self, canvas: np.ndarray) -> None:
        canvas[max(0, self.y0) : max(0, self.y1), max(0, self.x0) : max(0, self.x1)] = self.value

    def __str__(self) -> str:
        return f"{self.x0},{self.y0},{self.x1},{self.y1}={self.value}"


@dataclass(frozen=True)
class Pixels:
    """Listed (x, y) pixels set to ``value`` (pixels outside the canvas are ignored)."""

    points: tuple[tuple[int, int], ...]
    value: int

    def apply(self, canvas: np.ndarray) -> None:
        h, w = canvas.shape
        for x, y in self.points:
            if 0 <= x < w and 0 <= y < h:
                canvas[y, x] = self.value

    def __str__(self) -> str:
        return "px:" + ",".join(f"{x},{y}" for x, y in self.points) + f"={self.value}"


@dataclass(frozen=True)
class Dot:
    """Filled disc of radius ``r`` at (x, y)."""

    x: int
    y: int
    r: int
    value: int

    def apply(self, canvas: np.ndarray) -> None:
        cv2.circle(canvas, (self.x, self.y), self.r, int(self.value), thickness=-1)

    def __str__(self) -> str:
        return f"dot:{self.x},{self.y},{self.r}={self.value}"


@dataclass(frozen=True)
class Line:
    """Stroke of width ``width`` from (x0, y0) to (x1, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int
    width: int
    value: int

    def apply(self, canvas: np.ndarray) -> None:
        cv2.line(canvas, (self.x0, self.y0), (self.x1, self.y1), int(self.value), thickness=self.width)

    def __str__(self) -> str:
        return f"line:{self.x0},{self.y0},{self.x1},{self.y1},{self.width}={self.value}"


Primitive = Rect | Pixels | Dot | Line


@dataclass(frozen=True)
class Edit:
    """One or more primitives applied in order; ``label`` names it in tables and figures."""

    primitives: tuple[Primitive, ...]
    label: str = ""

    def apply(self, canvas: np.ndarray) -> np.ndarray:
        """An edited uint8 copy of ``canvas``."""
        out = np.ascontiguousarray(canvas, dtype=np.uint8).copy()
        for p in self.primitives:
            p.apply(out)
        return out

    def __str__(self) -> str:
        return self.label or ";".join(str(p) for p in self.primitives)


@dataclass
class EditResult:
    """Score of the text and the scorer's reading for one (edited) canvas."""

    label: str
    canvas: np.ndarray = field(repr=False)
    log_score: float
    recognized: str
    frames: list[str] | None = None  # argmax character of each frame ('' = blank), if asked for and the model has frames

    @property
    def score(self) -> float:
        """p(text | canvas)."""
        return float(np.exp(self.log_score))


_INT = r"-?\d+"


def _ints(body: str, n: int | None, what: str, spec: str) -> list[int]:
    parts = [p.strip() for p in body.split(",")]
    if not all(re.fullmatch(_INT, p) for p in parts) or (n is not None and len(parts) != n):
        count = f"{n} integers" if n is not None else "integers"
        raise EditSpecError(f"bad edit {spec!r}: {what} needs {count}; forms: {SPEC_HELP}")
    return [int(p) for p in parts]


def parse_primitive(spec: str) -> Primitive:
    """One primitive from its spec (see the module docstring)."""
    spec = spec.strip()
    if spec.count("=") != 1:
        raise EditSpecError(f"bad edit {spec!r}: expected SHAPE=VALUE; forms: {SPEC_HELP}")
    shape, value_s = (s.strip() for s in spec.split("="))
    if not re.fullmatch(r"\d+", value_s) or not 0 <= int(value_s) <= 255:
        raise EditSpecError(f"bad edit {spec!r}: VALUE must be a gray level 0..255")
    value = int(value_s)
    kind, _, body = shape.rpartition(":")
    kind = kind.strip().lower()
    if kind in ("", "rect"):
        x0, y0, x1, y1 = _ints(body, 4, "a rectangle X0,Y0,X1,Y1", spec)
        if x1 <= x0 or y1 <= y0:
            raise EditSpecError(f"bad edit {spec!r}: rectangle needs X1 > X0 and Y1 > Y0 (end is exclusive)")
        return Rect(x0, y0, x1, y1, value)
    if kind == "px":
        v = _ints(body, None, "px: an even number of", spec)
        if len(v) % 2:
            raise EditSpecError(f"bad edit {spec!r}: px: needs X,Y pairs")
        return Pixels(tuple(zip(v[::2], v[1::2])), value)
    if kind == "dot":
        x, y, r = _ints(body, 3, "dot: X,Y,R", spec)
        if r < 0:
            raise EditSpecError(f"bad edit {spec!r}: radius must be >= 0")
        return Dot(x, y, r, value)
    if kind == "line":
        x0, y0, x1, y1, w = _ints(body, 5, "line: X0,Y0,X1,Y1,W", spec)
        if w < 1:
            raise EditSpecError(f"bad edit {spec!r}: line width must be >= 1")
        return Line(x0, y0, x1, y1, w, value)
    raise EditSpecError(f"bad edit {spec!r}: unknown shape {kind!r}; forms: {SPEC_HELP}")


def parse_edit(spec: str, label: str = "") -> Edit:
    """An :class:`Edit` from ``;``-joined primitive specs."""
    parts = [p for p in spec.split(";") if p.strip()]
    if not parts:
        raise EditSpecError(f"empty edit spec; forms: {SPEC_HELP}")
    return Edit(tuple(parse_primitive(p) for p in parts), label)


def edit(
    scorer: TextScorer,
    canvas: np.ndarray,
    text: str,
    edits: Sequence[Edit | str],
    frames: bool = False,
) -> list[EditResult]:
    """Score ``text`` and read the original canvas and each edited copy (one batch).

    The first result is the original (label ``original``); edits may be :class:`Edit` objects or
    spec strings. With ``frames`` each result has the argmax character of every frame of that
    same forward pass (None for a scorer without frames).
    """
    parsed = [e if isinstance(e, Edit) else parse_edit(e) for e in edits]
    canvas = np.asarray(canvas, dtype=np.uint8)
    canvases = np.stack([canvas] + [e.apply(canvas) for e in parsed])
    scored = scorer.score(canvases, text, frames=frames)
    labels = ["original"] + [str(e) for e in parsed]
    per_frame = [frame_chars(lp, scorer.charset) for lp in scored.log_probs] if scored.log_probs is not None else [None] * len(canvases)
    return [EditResult(lbl, c, float(s), t, f) for lbl, c, s, t, f in zip(labels, canvases, scored.log_scores, scored.readings, per_frame)]


def frame_chars(log_probs: torch.Tensor, charset: Charset) -> list[str]:
    """The argmax class of each frame of (T, C) log-probs (the project's layout) as a character ('' = blank)."""
    return [charset.decode([int(i)]) for i in log_probs.argmax(dim=-1).tolist()]
