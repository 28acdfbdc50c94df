"""A synthetic writer and a synthetic scan: how one word becomes a gray word crop.

A :class:`Writer` is a font plus the habits of a hand: size, pen width, slant, line angle,
letter spacing, how much each glyph's size, angle and height on the line wander, baseline
wobble, elastic distortion (Simard et al. 2003), ink darkness and pen pressure. Fonts whose
script joins letters are shaped as whole words (raqm keeps the joins) and their letter spacing
jitters through a smooth monotone stretch; other fonts are drawn glyph by glyph, each glyph
with its own size, rotation, rise and spacing. Every word a writer writes varies a little
around the writer's habits. The scan then adds blur, paper gray level, texture, uneven
lighting, occasional ruled lines, contrast and noise, and crops tightly around the ink
like IAM's word boxes; :func:`binarize_scan` makes a crop what a binarising capture tool makes
of it (black ink on white, light strokes broken).

Everything draws from the ``numpy`` generator it is given: same generator state, same image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from htr.data.preprocess import normalize_contrast
from htr.data.synthetic.fonts import FontSpec, em_scale, pil_font
from htr.data.synthetic.strokes import connector, draw_segments, entry_point, exit_point, restroke, smooth_field, stroke_width


@dataclass(frozen=True)
class Writer:
    """The habits of one hand (lengths as fractions of the font size, angles in radians)."""

    font: FontSpec
    size: int  # font em in px of the raw crop (IAM crops are ~40-120 px high)
    pen: float  # stroke width the writer's pen draws
    slant: float  # horizontal shear per px of height (positive: leaning right)
    angle: float  # rotation of the writing line
    tracking: float  # extra space between letters (fraction of the advance)
    glyph_scale: float  # sd of each glyph's log-size
    glyph_rotate: float  # sd of each glyph's rotation
    glyph_rise: float  # sd of each glyph's offset from the baseline
    spacing: float  # sd of each gap (fraction of the advance)
    wobble: float  # amplitude of the smooth baseline wobble
    elastic: float  # amplitude of the elastic distortion
    ink: float  # ink gray level (0 black .. 255 white)
    pressure: float  # sd of the pen-pressure variation of the ink gray


@dataclass(frozen=True)
class Hand:
    """Letter-shape habits beyond the font (``htr.data.synthetic.strokes``), lengths as fractions
    of the font size. Drawn from a random stream of their own, so a writer with none of them
    writes exactly the image it wrote before they existed."""

    restroke: bool = False  # strokes redrawn along the letters' centre line with a round pen
    pen: float = 0.04  # that pen's width (a ballpoint's: thinner than most fonts' strokes)
    jitter: float = 0.0  # amplitude of the centre line's smooth displacement
    jitter_cell: float = 0.5  # its correlation length (about a letter: a new letter form, not a warp)
    connect: float = 0.0  # chance that two neighbouring lowercase letters of a print font are joined


NO_HAND = Hand()


def sample_hand(rng: np.random.Generator, p_restroke: float, restroke_jitter: float, p_connect: float, joined: bool) -> Hand:
    """A writer's shape habits: with chance ``p_restroke`` a round-pen writer whose centre line
    wanders by up to ``restroke_jitter`` of the size, with chance ``p_connect`` (fonts that do
    not join letters) a writer who joins most letters."""
    restroked = bool(rng.random() < p_restroke)
    pen = float(np.exp(rng.uniform(np.log(0.02), np.log(0.06))))
    jitter = float(rng.uniform(0.2, 1.0)) * restroke_jitter if restroked else 0.0
    cell = float(rng.uniform(0.3, 0.7))
    connect = float(rng.uniform(0.5, 1.0)) if (not joined and rng.random() < p_connect) else 0.0
    if not restroked and connect == 0.0:
        return NO_HAND
    return Hand(restroke=restroked, pen=pen, jitter=jitter, jitter_cell=cell, connect=connect)


def sample_writer(font: FontSpec, rng: np.random.Generator, font_size: tuple[int, int] = (36, 72)) -> Writer:
    """A random writer using ``font``."""
    return Writer(
        font=font,
        size=int(rng.integers(font_size[0] // 2, font_size[1] // 2 + 1)) * 2,
        pen=float(np.exp(rng.uniform(np.log(0.025), np.log(0.10)))),
        slant=float(np.clip(rng.normal(0.05, 0.18), -0.4, 0.55)),
        angle=float(np.clip(rng.normal(0.0, 0.025), -0.07, 0.07)),
        tracking=float(rng.uniform(-0.10, 0.10)),
        glyph_scale=float(rng.uniform(0.0, 0.10)),
        glyph_rotate=float(rng.uniform(0.0, 0.08)),
        glyph_rise=float(rng.uniform(0.0, 0.05)),
        spacing=float(rng.uniform(0.0, 0.10)),
        wobble=float(rng.uniform(0.0, 0.05)),
        elastic=float(rng.uniform(0.0, 0.03)),
        ink=float(rng.uniform(5, 110)),
        pressure=float(rng.uniform(0, 18)),
    )


def _smooth_1d(rng: np.random.Generator, n: int, knots: int, sigma: float) -> np.ndarray:
    """A smooth random function on 0..n-1 (piecewise-cubic through ``knots`` random values)."""
    vals = rng.normal(0.0, sigma, max(2, knots)).astype(np.float32)
    return cv2.resize(vals[None, :], (n, 1), interpolation=cv2.INTER_CUBIC)[0]


def _ink_joined(writer: Writer, text: str, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The shaped word as an ink mask, and the forward map of the letter-spacing stretch."""
    font = pil_font(str(writer.font.path), size)
    left, top, right, bottom = font.getbbox(text)
    pad = int(0.5 * size) + 8
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), text, font=font, fill=255)
    # Spacing jitter as a smooth monotone stretch of the columns: joins stay joined.
    stretch = (1.0 + writer.tracking) * (1.0 + _smooth_1d(rng, w, len(text) + 2, writer.spacing).clip(-0.3, 0.3))
    return np.asarray(mask, dtype=np.uint8), stretch


def _ink_glyphs(writer: Writer, text: str, rng: np.random.Generator, size: int, hand: Hand = NO_HAND, hand_rng: np.random.Generator | None = None) -> np.ndarray:
    """The word drawn glyph by glyph, each with its own size, rotation, rise and spacing; with a
    connecting ``hand``, neighbouring lowercase letters joined by a cursive stroke."""
    font = pil_font(str(writer.font.path), size)
    x_height = -float(font.getbbox("x", anchor="ls")[1])
    previous: tuple[str, tuple[float, float] | None, float] | None = None  # last letter, its exit point, its stroke width
    ascent, descent = font.getmetrics()
    pad = int(0.6 * size) + 8
    width = int(font.getlength(text) * (1.4 + max(0.0, writer.tracking)) + 2 * pad + size)
    height = ascent + descent + 2 * pad
    canvas = np.zeros((height, width), np.uint8)
    x, baseline = float(pad), float(pad + ascent)
    for ch in text:
        advance = font.getlength(ch)
        scale = float(np.exp(rng.normal(0.0, writer.glyph_scale)))
        turn = float(rng.normal(0.0, writer.glyph_rotate))
        rise = float(rng.normal(0.0, writer.glyph_rise)) * size
        gap = advance * scale * (1.0 + writer.tracking + float(rng.normal(0.0, writer.spacing)))
        x0, y0, x1, y1 = font.getbbox(ch, anchor="ls")
        if x1 > x0 and y1 > y0:
            glyph = Image.new("L", (x1 - x0 + 2, y1 - y0 + 2), 0)
            ImageDraw.Draw(glyph).text((1 - x0, 1 - y0), ch, font=font, fill=255, anchor="ls")
            ox, oy = 1.0 - x0, 1.0 - y0  # the glyph's origin (left end of its baseline) in its image
            c, s = scale * math.cos(turn), scale * math.sin(turn)
            tx, ty = x - (c * ox - s * oy), baseline + rise - (s * ox + c * oy)
            warped = cv2.warpAffine(np.asarray(glyph), np.float32([[c, -s, tx], [s, c, ty]]), (width, height), flags=cv2.INTER_LINEAR)
            if hand.connect > 0 and hand_rng is not None:
                previous = _join(canvas, warped, ch, previous, baseline + rise, x_height * scale, size, hand, hand_rng)
            np.maximum(canvas, warped, out=canvas)
        x += max(gap, 0.35 * advance)
        if x > width - pad:  # never runs off: the canvas is 1.4x the shaped width
            break
    cols = np.nonzero(canvas.max(axis=0))[0]
    return canvas[:, : int(cols[-1]) + pad] if len(cols) else canvas


def _join(
    canvas: np.ndarray, glyph: np.ndarray, ch: str, previous: tuple[str, tuple[float, float] | None, float] | None,
    baseline: float, x_height: float, size: int, hand: Hand, rng: np.random.Generator,
) -> tuple[str, tuple[float, float] | None, float]:
    """Draw the join from the previous letter into ``glyph`` (if both are lowercase letters and the
    writer joins them this time); returns this letter's (char, exit point, stroke width)."""
    ink = glyph > 127
    width = stroke_width(ink) if ink.any() else 1.0
    if previous is not None and ch.islower() and previous[0].islower() and previous[1] is not None and rng.random() < hand.connect:
        entry = entry_point(glyph, baseline, x_height)
        start = previous[1]
        if entry is not None and 0 < entry[0] - start[0] < 0.8 * size:
            sag = float(rng.uniform(0.0, 0.15)) * x_height
            pen = 0.6 * min(width, previous[2])  # joins are hairlines of the letters' strokes
            np.maximum(canvas, draw_segments(canvas.shape, connector(start, entry, sag), pen), out=canvas)
    return ch, exit_point(glyph, baseline, x_height), width


def _adjust_pen(ink: np.ndarray, target: float) -> np.ndarray:
    """Thicken or thin the strokes towards the pen width ``target`` (px)."""
    binary = ink > 128
    area = int(binary.sum())
    diff = target - stroke_width(binary)
    if diff > 1.0:
        k = int(min(5, round(diff))) + 1
        return cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if diff < -1.5:
        thin = cv2.erode(ink, np.ones((2, 2), np.uint8))
        if (thin > 128).sum() > 0.5 * area:
            return thin
    return ink


def _warp(ink: np.ndarray, stretch: np.ndarray | None, writer: Writer, rng: np.random.Generator, size: int, n_chars: int) -> np.ndarray:
    """One remap for slant, line angle, baseline wobble, spacing stretch and elastic distortion."""
    h, w = ink.shape
    stretch = np.ones(w, np.float32) if stretch is None else stretch
    fwd = np.concatenate([[0.0], np.cumsum(stretch)[:-1]]).astype(np.float32)  # source col -> output col
    slant = writer.slant + float(rng.normal(0.0, 0.04))
    angle = writer.angle + float(rng.normal(0.0, 0.01))
    off = int(np.ceil(abs(slant) * h + abs(angle) * w)) + 2
    out_w = int(np.ceil(fwd[-1])) + 2 * off + 1
    rows = np.nonzero(ink.max(axis=1) > 0)[0]
    yc = float(rows[0] + 0.6 * (rows[-1] - rows[0])) if len(rows) else h / 2
    ys, xs = np.mgrid[0:h, 0:out_w].astype(np.float32)
    x1 = xs - off + slant * (ys - yc)
    u = np.interp(x1.ravel(), fwd, np.arange(w, dtype=np.float32), left=-10.0, right=w + 10.0).reshape(h, out_w).astype(np.float32)
    wobble = _smooth_1d(rng, w, max(2, n_chars // 2 + 2), writer.wobble * size)
    map_x = u
    map_y = ys + wobble[np.clip(u, 0, w - 1).astype(np.int32)] - angle * (u - w / 2)
    amp = writer.elastic * size * float(rng.uniform(0.5, 1.5))
    if amp > 0.2:
        cell = float(rng.uniform(0.4, 0.8)) * size
        map_x = map_x + smooth_field(rng, h, out_w, cell, amp)
        map_y = map_y + smooth_field(rng, h, out_w, cell, amp)
    return cv2.remap(ink, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _scan(alpha: np.ndarray, writer: Writer, rng: np.random.Generator, size: int) -> np.ndarray:
    """Ink coverage (0..1) -> gray scan: blur, ink and paper, texture, lighting, rules, noise, crop."""
    alpha = cv2.GaussianBlur(alpha.astype(np.float32) / 255.0, (0, 0), float(rng.uniform(0.3, 1.0)))
    h, w = alpha.shape
    # Paper: mostly near-white, sometimes gray or dim (photos, recycled paper, old scans).
    paper_level = float(rng.uniform(215, 253)) if rng.random() < 0.75 else float(rng.uniform(140, 215))
    paper = paper_level + smooth_field(rng, h, w, float(rng.uniform(8, 40)), float(rng.uniform(0, 6)))
    if rng.random() < 0.3:  # uneven lighting: a linear ramp across the crop
        theta = float(rng.uniform(0, 2 * np.pi))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (np.cos(theta) * xs / max(1, w) + np.sin(theta) * ys / max(1, h)) - 0.5
        paper = paper + float(rng.uniform(10, 45)) * ramp
    if rng.random() < 0.08:  # ruled lines (exercise books, forms)
        gap = float(rng.uniform(0.9, 1.6)) * size
        phase = float(rng.uniform(0, gap))
        level = float(rng.uniform(20, 70))
        for y in np.arange(phase, h, gap):
            cv2.line(paper, (0, int(y)), (w - 1, int(y + rng.normal(0, 1))), -level, 1)
    ink = min(writer.ink + float(rng.normal(0, 8)), paper_level - 50) + smooth_field(rng, h, w, size, writer.pressure)
    img = paper * (1.0 - alpha) + ink * alpha
    img += rng.normal(0.0, float(rng.uniform(0.5, 6.0)), img.shape).astype(np.float32)
    # IAM-like crop: word boxes from IAM's segmentation are tight, 1 px to ~1/10 of the size.
    # (Tight crops + left alignment are what make the translation shortcut.)
    rows = np.nonzero(alpha.max(axis=1) > 0.25)[0]
    cols = np.nonzero(alpha.max(axis=0) > 0.25)[0]
    if len(rows) == 0:
        rows, cols = np.array([0, h - 1]), np.array([0, w - 1])
    m = rng.integers(1, max(3, int(0.10 * size)) + 1, size=4)
    y0, y1 = max(0, rows[0] - m[0]), min(h, rows[-1] + 1 + m[1])
    x0, x1 = max(0, cols[0] - m[2]), min(w, cols[-1] + 1 + m[3])
    return np.clip(img[y0:y1, x0:x1] + 0.5, 0, 255).astype(np.uint8)


def binarize_scan(crop: np.ndarray, rng: np.random.Generator, max_shift: float = 0.6) -> np.ndarray:
    """A gray crop as a binarising capture tool leaves it: pure black ink on white paper.

    The crop is flat-fielded first (as an adaptive binariser would, so uneven lighting does not
    turn into black blobs), then cut at Otsu's threshold moved towards the ink by a random share
    of the way (0..``max_shift``): at 0 the strokes stay whole, further on their lighter parts
    (low pen pressure, thin hairlines softened by the blur) drop out and the strokes break, as
    in binarised archives of real handwriting."""
    flat = normalize_contrast(crop)
    otsu, _ = cv2.threshold(flat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = float(np.percentile(flat, 2))
    level = otsu - float(rng.uniform(0.0, max_shift)) * max(0.0, otsu - ink)
    if not (flat < level).any():  # a faint mark never vanishes: its label would have no ink
        level = otsu + 1
    return np.where(flat < level, 0, 255).astype(np.uint8)


def render_word(writer: Writer, text: str, rng: np.random.Generator, hand: Hand = NO_HAND, hand_rng: np.random.Generator | None = None) -> np.ndarray:
    """``text`` written by ``writer`` and scanned: one IAM-like word crop (2-D uint8).

    ``hand`` (re-stroking, joins) draws only from ``hand_rng``: every other random choice, and so
    the image of a writer without them, is the same as without ``hand``."""
    if hand != NO_HAND and hand_rng is None:
        raise ValueError("render_word: a hand with shape habits needs its own hand_rng")
    font = writer.font
    if not text or not set(text) <= set(font.chars):
        raise ValueError(f"font {font.name} cannot render {text!r}")
    size = max(16, int(round(writer.size * em_scale(str(font.path)) * float(np.exp(rng.normal(0.0, 0.06))))))
    if font.joined:
        ink, stretch = _ink_joined(writer, text, rng, size)
    else:
        ink, stretch = _ink_glyphs(writer, text, rng, size, hand, hand_rng), None
    pen = writer.pen * size * float(np.exp(rng.normal(0.0, 0.1)))
    if hand.restroke:
        pen = hand.pen * size * float(np.exp(hand_rng.normal(0.0, 0.1)))
        ink = restroke(ink, max(1.0, pen), hand.jitter * size, hand.jitter_cell * size, hand_rng)
    else:
        ink = _adjust_pen(ink, pen)
    ink = _warp(ink, stretch, writer, rng, size, len(text))
    return _scan(ink, writer, rng, size)
