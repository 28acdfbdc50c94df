"""Letter shapes beyond the font's: strokes redrawn along their centre line, connecting strokes.

Designed fonts draw strokes with a calligraphic contrast (thick downstrokes, thin hairlines) and
with one fixed shape per letter; people write with a ballpoint of even width and form every
letter a little differently. :func:`restroke` thins the rendered ink to its centre line (the
Zhang-Suen thinning, 1984), moves the line by a smooth random displacement (a different letter
form each time, not a distortion of the whole image) and redraws it with a round pen of the
writer's width. :func:`connector` draws the join a cursive writer makes between two letters a
print font leaves apart.

Everything random draws from the ``numpy`` generator it is given: same state, same strokes.
"""

from __future__ import annotations

import cv2
import numpy as np

# The 8 neighbours of a pixel in Zhang-Suen's order P2..P9 (clockwise from north) as (dy, dx).
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
# Segments of the centre line: each skeleton pixel to its east, south-east, south and south-west neighbour.
_FORWARD = ((0, 1), (1, 1), (1, 0), (1, -1))


def _zhang_suen_tables() -> tuple[np.ndarray, np.ndarray]:
    """For each of the 256 neighbourhoods (bit i = neighbour P(i + 2)), whether the centre pixel
    goes in the first and in the second sub-iteration of Zhang-Suen thinning."""
    tables = np.zeros((2, 256), bool)
    for code in range(256):
        p = [(code >> i) & 1 for i in range(8)]
        count = sum(p)
        transitions = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))
        p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
        if 2 <= count <= 6 and transitions == 1:
            tables[0, code] = not (p2 and p4 and p6) and not (p4 and p6 and p8)
            tables[1, code] = not (p2 and p4 and p8) and not (p2 and p6 and p8)
    return tables[0], tables[1]


_DELETE_FIRST, _DELETE_SECOND = _zhang_suen_tables()


def thin(mask: np.ndarray) -> np.ndarray:
    """The one-pixel centre line of a binary mask (Zhang & Suen 1984), as a bool array."""
    out = np.zeros(mask.shape, bool)
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return out
    y0, x0 = rows.min(), cols.min()
    img = np.pad(mask[y0 : rows.max() + 1, x0 : cols.max() + 1].astype(np.uint8), 1)  # only the ink's box
    h, w = img.shape
    while True:
        changed = False
        for table in (_DELETE_FIRST, _DELETE_SECOND):
            code = np.zeros((h - 2, w - 2), np.uint8)
            for bit, (dy, dx) in enumerate(_NEIGHBOURS):
                code |= img[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] << bit
            delete = (img[1:-1, 1:-1] == 1) & table[code]
            if delete.any():
                img[1:-1, 1:-1][delete] = 0
                changed = True
        if not changed:
            out[y0 : y0 + h - 2, x0 : x0 + w - 2] = img[1:-1, 1:-1].astype(bool)
            return out


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask in px (twice the area over the boundary length)."""
    binary = mask.astype(np.uint8)
    area = int(binary.sum())
    edge = area - int(cv2.erode(binary, np.ones((3, 3), np.uint8)).sum())
    return 2.0 * area / max(1, edge)


def centre_line_segments(skeleton: np.ndarray) -> np.ndarray:
    """The centre line as (N, 2, 2) float32 segments ((x0, y0), (x1, y1)) between 8-neighbour pixels;
    an isolated pixel (a dot) is a segment of length 0."""
    ys, xs = np.nonzero(skeleton)
    h, w = skeleton.shape
    segments = []
    linked = np.zeros(len(ys), bool)
    for dy, dx in _FORWARD:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        hit = np.zeros(len(ys), bool)
        hit[inside] = skeleton[ny[inside], nx[inside]]
        segments.append(np.stack([np.stack([xs[hit], ys[hit]], 1), np.stack([nx[hit], ny[hit]], 1)], 1))
        linked |= hit
    # A pixel linked only backwards is not alone; find those that have no neighbour at all.
    padded = np.pad(skeleton, 1)
    neighbours = sum(padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w].astype(np.int8) for dy, dx in _NEIGHBOURS)
    alone = neighbours[ys, xs] == 0
    dots = np.stack([xs[alone], ys[alone]], 1)
    segments.append(np.stack([dots, dots], 1))
    return np.concatenate(segments).astype(np.float32)


def smooth_field(rng: np.random.Generator, h: int, w: int, cell: float, sigma: float) -> np.ndarray:
    """A smooth random displacement field (bicubic through N(0, sigma) values on a ``cell``-px grid)."""
    gh, gw = max(2, int(round(h / cell)) + 1), max(2, int(round(w / cell)) + 1)
    grid = rng.normal(0.0, sigma, (gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def draw_segments(shape: tuple[int, int], segments: np.ndarray, pen: float) -> np.ndarray:
    """Segments drawn with a round pen of width ``pen`` px (anti-aliased) on a black uint8 image."""
    out = np.zeros(shape, np.uint8)
    if len(segments) == 0:
        return out
    shift = 4  # sub-pixel end points (OpenCV's fixed point: 1/16 px)
    pts = np.round(segments * (1 << shift)).astype(np.int32)
    thickness = max(1, int(round(pen)))
    cv2.polylines(out, list(pts), isClosed=False, color=255, thickness=thickness, lineType=cv2.LINE_AA, shift=shift)
    return out


def restroke(ink: np.ndarray, pen: float, jitter: float, cell: float, rng: np.random.Generator) -> np.ndarray:
    """Ink mask (uint8, 255 = ink) -> the same letters redrawn along their centre line, moved by a
    smooth displacement of amplitude ``jitter`` px and correlation length ``cell`` px, with a
    round pen ``pen`` px wide."""
    binary = ink > 127
    if not binary.any():
        return ink
    skeleton = thin(binary)
    segments = centre_line_segments(skeleton)
    h, w = ink.shape
    if jitter > 0:
        dx, dy = smooth_field(rng, h, w, cell, jitter), smooth_field(rng, h, w, cell, jitter)
        ix = np.clip(segments[..., 0].astype(np.int32), 0, w - 1)
        iy = np.clip(segments[..., 1].astype(np.int32), 0, h - 1)
        segments = segments + np.stack([dx[iy, ix], dy[iy, ix]], -1)
    return draw_segments((h, w), segments, pen)


def exit_point(glyph: np.ndarray, baseline: float, x_height: float) -> tuple[float, float] | None:
    """Where a cursive writer leaves a letter: its rightmost ink in the lower half of the x-height band."""
    top, bottom = int(baseline - 0.5 * x_height), int(baseline + 0.1 * x_height) + 1
    band = glyph[max(0, top) : max(0, bottom)] > 127
    cols = np.nonzero(band.any(axis=0))[0]
    if len(cols) == 0:
        return None
    x = int(cols[-1])
    rows = np.nonzero(band[:, x])[0]
    return float(x), float(max(0, top) + rows.mean())


def entry_point(glyph: np.ndarray, baseline: float, x_height: float) -> tuple[float, float] | None:
    """Where a cursive writer enters a letter: its leftmost ink inside the x-height band."""
    top, bottom = int(baseline - 1.0 * x_height), int(baseline) + 1
    band = glyph[max(0, top) : max(0, bottom)] > 127
    cols = np.nonzero(band.any(axis=0))[0]
    if len(cols) == 0:
        return None
    x = int(cols[0])
    rows = np.nonzero(band[:, x])[0]
    return float(x), float(max(0, top) + rows.mean())


def connector(start: tuple[float, float], end: tuple[float, float], sag: float, points: int = 12) -> np.ndarray:
    """A join from ``start`` to ``end`` as a quadratic curve that sags ``sag`` px below its chord
    (the garland of cursive writing), as (points - 1, 2, 2) segments."""
    (x0, y0), (x1, y1) = start, end
    cx, cy = 0.5 * (x0 + x1), max(y0, y1) + sag
    t = np.linspace(0.0, 1.0, points, dtype=np.float32)[:, None]
    curve = (1 - t) ** 2 * np.float32([x0, y0]) + 2 * (1 - t) * t * np.float32([cx, cy]) + t**2 * np.float32([x1, y1])
    return np.stack([curve[:-1], curve[1:]], 1)
