"""Embedded default dataset: synthetic IAM-like handwritten word images (no download).

Words are drawn from English word frequencies (``wordfreq``), plus capitalised words, numbers
and IAM-like standalone punctuation tokens, and rendered in handwriting fonts installed from
PyPI (``fontpkg-*``, located with :mod:`fontpkg`). Each sample gets its own "writer" and
"scan": font size and weight, stroke width, slant, baseline wobble, letter-spacing jitter
(a smooth monotone horizontal warp of the shaped word, so joined scripts stay joined), small
elastic distortion, ink and paper gray levels, paper texture and noise, blur, and a tight
crop around the ink with a small random margin (like IAM's word boxes).

The generator returns the raw crop as a 2-D uint8 array; the project's preprocessing
(:func:`htr.data.preprocess.to_canvas`) is applied later by the data loader, never here.

Sample ``index`` of ``split`` depends only on ``(config, split, index)``: changing the size of
a split, or regenerating one split, leaves every other sample as it was.

Splits: ``train``, ``val``, ``test`` (in-font: the same fonts as train) and ``test_unseen``
(only the held-out fonts, never seen in train/val: the analogue of IAM's writer-independent
test). On disk (see :func:`materialize`)::

    <root>/manifest.json
    <root>/<split>/labels.tsv          images/000123.png<TAB>text
    <root>/<split>/images/*.png
    <root>/<split>/manifest.json

CLI::

    python -m htr.data.synthetic generate --root data/synthetic [--n-train N ...]
    python -m htr.data.synthetic contact-sheet --out data/contact_sheet.png
    python -m htr.data.synthetic fonts          # fonts found, kept, dropped characters
    python -m htr.data.synthetic bench          # render vs load speed
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from htr.text import IAM_CHARSET, ctc_min_frames

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2
SPLITS = ("train", "val", "test", "test_unseen")
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3, "test_unseen": 4}

# The font families the project installs (requirements.txt: fontpkg-<slug>).
EXPECTED_FAMILIES = (
    "caveat",
    "dancing-script",
    "delius",
    "great-vibes",
    "indie-flower",
    "kalam",
    "pacifico",
    "satisfy",
    "shadows-into-light",
    "yellowtail",
    "zeyada",
)
# Held out of train/val/test, used only by test_unseen: one print-like, one script-like hand.
DEFAULT_HELDOUT = ("IndieFlower-Regular", "Satisfy-Regular")

MAX_LABEL_CHARS = 16
MAX_CTC_FRAMES = 32

# IAM-like standalone punctuation/clitic tokens ('.' and ',' by far the most common).
PUNCTUATION_TOKENS: dict[str, float] = {
    ".": 0.30,
    ",": 0.30,
    '"': 0.08,
    "-": 0.07,
    "'": 0.04,
    "'s": 0.04,
    ";": 0.03,
    "?": 0.03,
    ":": 0.02,
    "!": 0.02,
    "(": 0.015,
    ")": 0.015,
    "n't": 0.01,
    "&": 0.004,
    "/": 0.003,
    "#": 0.001,
    "*": 0.001,
    "+": 0.001,
}

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Lowercase letters whose shape differs clearly from the capital: a font drawing them like
# the capital (small caps, all-caps hands) draws them "as something else".
_CASE_PROBE = "abdeghnqr"


@dataclass
class SyntheticConfig:
    """Everything that decides the generated data (recorded in the manifest)."""

    seed: int = 0
    n_train: int = 20000
    n_val: int = 1000
    n_test: int = 1000
    n_test_unseen: int = 1000
    # Font names (file stem without axes, e.g. "Kalam-Light"), file names or family slugs.
    heldout_fonts: tuple[str, ...] = DEFAULT_HELDOUT
    # Glob of extra .ttf/.otf files added to the font pool (e.g. "~/fonts/*.ttf").
    extra_fonts: str | None = None
    # Text mix: share of punctuation tokens and of numbers; the rest are words.
    p_punctuation: float = 0.10
    p_number: float = 0.02
    p_capitalized: float = 0.12
    p_upper: float = 0.01
    vocabulary_size: int = 30000
    # Word probability ~ frequency ** word_freq_power (1.0 = natural Zipf frequencies).
    word_freq_power: float = 1.0
    # Font size (em, px) range of the raw rendering; IAM crops are ~40-120 px high.
    font_size: tuple[int, int] = (48, 92)

    def __post_init__(self) -> None:
        self.heldout_fonts = tuple(self.heldout_fonts)
        self.font_size = tuple(self.font_size)  # type: ignore[assignment]
        for name in ("n_train", "n_val", "n_test", "n_test_unseen"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def size(self, split: str) -> int:
        _check_split(split)
        return getattr(self, f"n_{split}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["heldout_fonts"] = list(self.heldout_fonts)
        d["font_size"] = list(self.font_size)
        return d


def _check_split(split: str) -> None:
    if split not in _SPLIT_CODE:
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")


# --------------------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FontSpec:
    """One font file and the IAM characters it can draw faithfully."""

    name: str  # e.g. "Caveat", "Kalam-Light"
    path: Path
    family: str  # fontpkg slug, or the file stem for extra fonts
    license: str
    variable: bool
    wght_min: float | None
    wght_max: float | None
    chars: str  # usable IAM characters
    dropped: str  # IAM characters not usable (missing glyph or drawn as something else)

    @property
    def usable(self) -> bool:
        return all(c in self.chars for c in _LETTERS)

    def matches(self, key: str) -> bool:
        key = key.lower()
        return key in (self.name.lower(), self.path.name.lower(), self.path.stem.lower(), self.family.lower())


def _font_name(path: Path) -> str:
    return re.sub(r"\[.*?\]", "", path.stem).strip("-_ ") or path.stem


def _glyph_bitmap(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray:
    mask = font.getmask(ch)
    arr = np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0]) if mask.size[0] * mask.size[1] else np.zeros((0, 0), np.uint8)
    return arr


def _normalized_shape(arr: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(arr > 64)
    if len(ys) == 0:
        return None
    crop = arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return cv2.resize(crop, (24, 24), interpolation=cv2.INTER_AREA) > 96


@lru_cache(maxsize=None)
def _check_font(path: str) -> tuple[str, str, str]:
    """(usable chars, dropped chars, reason) for one font file: cmap coverage + rendering checks."""
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True, fontNumber=0) as tt:
        cmap = tt.getBestCmap() or {}
    reasons = []
    missing = [c for c in IAM_CHARSET if c != " " and ord(c) not in cmap]
    if missing:
        reasons.append(f"no glyph for {''.join(missing)!r}")
    bad = set(missing)
    # Same glyph for a lowercase letter and its capital: the font has no real lowercase.
    same = [c for c in _LETTERS[:26] if ord(c) in cmap and cmap.get(ord(c)) == cmap.get(ord(c.upper()))]
    if same:
        reasons.append(f"lowercase mapped to the capital glyph for {''.join(same)!r}")
        bad.update(same)
    font = ImageFont.truetype(path, 64)
    # Glyphs that draw nothing.
    empty = [c for c in IAM_CHARSET if c != " " and c not in bad and _normalized_shape(_glyph_bitmap(font, c)) is None]
    if empty:
        reasons.append(f"empty glyph for {''.join(empty)!r}")
        bad.update(empty)
    # Lowercase drawn as a (scaled) capital: small caps and all-caps hands.
    caps_like = []
    for c in _CASE_PROBE:
        if c in bad or c.upper() in bad:
            continue
        lo, up = _normalized_shape(_glyph_bitmap(font, c)), _normalized_shape(_glyph_bitmap(font, c.upper()))
        if lo is not None and up is not None:
            iou = (lo & up).sum() / max(1, (lo | up).sum())
            if iou > 0.8:
                caps_like.append(c)
    if caps_like:
        reasons.append(f"lowercase drawn like the capital for {''.join(caps_like)!r}")
        bad.update(caps_like)
        if len(caps_like) >= len(_CASE_PROBE) // 2:  # a small-caps font: no lowercase at all
            bad.update(_LETTERS[:26])
    chars = "".join(c for c in IAM_CHARSET if c not in bad)
    dropped = "".join(c for c in IAM_CHARSET if c in bad)
    return chars, dropped, "; ".join(reasons)


def _candidate_files(extra_glob: str | None) -> list[tuple[Path, str, str, bool, float | None, float | None]]:
    out = []
    try:
        import fontpkg

        families = fontpkg.families()
    except ImportError:  # pragma: no cover - fontpkg is a requirement
        log.warning("fontpkg is not installed: no built-in handwriting fonts")
        families = {}
    for slug in sorted(families):
        fam = families[slug]
        for f in fam.files:
            out.append((Path(f.path), slug, str(fam.license), bool(f.variable), f.wght_min, f.wght_max))
    if extra_glob:
        for p in sorted(glob.glob(os.path.expanduser(extra_glob), recursive=True)):
            if p.lower().endswith((".ttf", ".otf")):
                out.append((Path(p), Path(p).stem, "unknown", False, None, None))
    return out


@lru_cache(maxsize=16)
def _available_fonts(extra_glob: str | None) -> tuple[FontSpec, ...]:
    fonts = []
    for path, family, lic, variable, wmin, wmax in _candidate_files(extra_glob):
        try:
            chars, dropped, reason = _check_font(str(path))
        except Exception as err:  # noqa: BLE001 - an unreadable font file is skipped, not fatal
            log.warning("font %s skipped: unreadable (%s)", path, err)
            continue
        if variable and (wmin is None or wmax is None):
            variable = False
        spec = FontSpec(_font_name(path), path, family, lic, variable, wmin, wmax, chars, dropped)
        if not spec.usable:
            log.warning("font %s dropped: %s", spec.name, reason)
            continue
        if dropped:
            log.info("font %s: characters %r not used (%s)", spec.name, dropped, reason)
        fonts.append(spec)
    return tuple(fonts)


def available_fonts(extra_glob: str | None = None) -> list[FontSpec]:
    """Usable handwriting fonts: every installed ``fontpkg`` family plus ``extra_glob`` files.

    Fonts without all 52 letters (or whose lowercase is drawn as capitals) are dropped with a
    log line; a kept font lists in ``dropped`` the IAM characters it never renders.
    """
    return list(_available_fonts(extra_glob))


def split_fonts(config: SyntheticConfig, split: str) -> list[FontSpec]:
    """The font pool of a split: held-out fonts for ``test_unseen``, all others otherwise."""
    _check_split(split)
    fonts = available_fonts(config.extra_fonts)
    heldout = []
    for key in config.heldout_fonts:
        hits = [f for f in fonts if f.matches(key)]
        if not hits:
            raise ValueError(f"held-out font {key!r} not found among {[f.name for f in fonts]}")
        heldout.extend(h for h in hits if h not in heldout)
    pool = heldout if split == "test_unseen" else [f for f in fonts if f not in heldout]
    if not pool:
        raise ValueError(f"no fonts left for split {split!r} (held out: {config.heldout_fonts})")
    return pool


@lru_cache(maxsize=1024)
def _pil_font(path: str, size: int, weight: int | None) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(path, size)
    if weight is not None:
        font.set_variation_by_axes([weight])
    return font


# --------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------


def _label_ok(text: str) -> bool:
    return (
        0 < len(text) <= MAX_LABEL_CHARS
        and text == text.strip()
        and all(c in IAM_CHARSET and c != " " for c in text)
        and ctc_min_frames(text) <= MAX_CTC_FRAMES
    )


_FRAGMENTS = frozenset({"ll", "ve", "re", "nt", "didn", "doesn", "isn", "wasn", "don", "couldn", "wouldn"})


@lru_cache(maxsize=8)
def _vocabulary(size: int, power: float) -> tuple[tuple[str, ...], np.ndarray]:
    """English words (IAM charset) and their cumulative sampling probabilities."""
    import wordfreq

    words, weights = [], []
    for w in wordfreq.top_n_list("en", size):
        # digits come from the number generator (wordfreq folds digits to 0); single letters
        # and clitic fragments ("s", "ll", "ve") are tokenizer debris, not words.
        if not any(c.isalpha() for c in w) or any(c.isdigit() for c in w) or w in _FRAGMENTS:
            continue
        if len(w) == 1 and w not in ("a", "i"):
            continue
        # wordfreq lowercases everything: restore the pronoun I and its contractions.
        if w == "i" or w.startswith("i'"):
            w = "I" + w[1:]
        if not _label_ok(w):
            continue
        words.append(w)
        weights.append(wordfreq.word_frequency(w, "en") ** power)
    p = np.asarray(weights, dtype=np.float64)
    return tuple(words), np.cumsum(p / p.sum())


_PUNCT = tuple(PUNCTUATION_TOKENS)
_PUNCT_CDF = np.cumsum(np.asarray(list(PUNCTUATION_TOKENS.values())) / sum(PUNCTUATION_TOKENS.values()))


def _pick(cdf: np.ndarray, rng: np.random.Generator) -> int:
    return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


def _number(rng: np.random.Generator) -> str:
    u = rng.random()
    if u < 0.40:
        return str(int(rng.integers(0, 100)))
    if u < 0.55:
        return str(int(rng.integers(100, 10000)))
    if u < 0.70:
        return str(int(rng.integers(1800, 2030)))
    if u < 0.80:
        return f"{int(rng.integers(1, 1000))},{int(rng.integers(0, 1000)):03d}"
    if u < 0.92:
        return f"{int(rng.integers(0, 100))}.{int(rng.integers(0, 100))}"
    n = int(rng.integers(1, 40))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def sample_text(config: SyntheticConfig, rng: np.random.Generator, chars: str = IAM_CHARSET) -> str:
    """One IAM-like label that uses only ``chars`` (resampled until it does)."""
    words, cdf = _vocabulary(config.vocabulary_size, config.word_freq_power)
    allowed = set(chars)
    for _ in range(100):
        u = rng.random()
        if u < config.p_punctuation:
            text = _PUNCT[_pick(_PUNCT_CDF, rng)]
        elif u < config.p_punctuation + config.p_number:
            text = _number(rng)
        else:
            text = words[_pick(cdf, rng)]
            v = rng.random()
            if v < config.p_upper:
                text = text.upper()
            elif v < config.p_upper + config.p_capitalized:
                text = text[:1].upper() + text[1:]
        if _label_ok(text) and set(text) <= allowed:
            return text
    return "the"  # every usable font has all letters


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def _smooth_1d(rng: np.random.Generator, n: int, knots: int, sigma: float) -> np.ndarray:
    """A smooth random function on 0..n-1 (piecewise-cubic through ``knots`` random values)."""
    knots = max(2, knots)
    vals = rng.normal(0.0, sigma, knots).astype(np.float32)
    return cv2.resize(vals[None, :], (n, 1), interpolation=cv2.INTER_CUBIC)[0]


def _smooth_2d(rng: np.random.Generator, h: int, w: int, cell: float, sigma: float) -> np.ndarray:
    gh, gw = max(2, int(round(h / cell)) + 1), max(2, int(round(w / cell)) + 1)
    grid = rng.normal(0.0, sigma, (gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def render_text(font: FontSpec, text: str, rng: np.random.Generator, font_size: tuple[int, int] = (48, 92)) -> np.ndarray:
    """Render ``text`` in ``font`` as one IAM-like word crop (2-D uint8) with random writer/scan."""
    if not text or not set(text) <= set(font.chars):
        raise ValueError(f"font {font.name} cannot render {text!r}")
    size = int(rng.integers(font_size[0] // 2, font_size[1] // 2 + 1)) * 2
    weight = None
    if font.variable:
        weight = int(round(rng.uniform(font.wght_min, font.wght_max) / 50.0) * 50)
    pil = _pil_font(str(font.path), size, weight)
    stroke = 0

    # 1. Ink mask of the shaped word (raqm layout keeps joined scripts joined).
    left, top, right, bottom = pil.getbbox(text, stroke_width=stroke)
    pad = int(0.5 * size) + 8
    w = right - left + 2 * pad
    h = bottom - top + 2 * pad
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), text, font=pil, fill=255, stroke_width=stroke, stroke_fill=255)
    ink = np.asarray(mask, dtype=np.uint8)

    # 2. Pen width: move the font's stroke thickness towards this writer's pen width.
    binary = (ink > 128).astype(np.uint8)
    area = int(binary.sum())
    edge = area - int(cv2.erode(binary, np.ones((3, 3), np.uint8)).sum())
    thickness = 2.0 * area / max(1, edge)  # ~ mean stroke width in px
    target = float(rng.uniform(0.045, 0.09)) * size
    diff = target - thickness
    if diff > 1.0:
        k = int(min(4, round(diff))) + 1
        ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    elif diff < -1.5:
        thin = cv2.erode(ink, np.ones((2, 2), np.uint8))
        if (thin > 128).sum() > 0.5 * area:
            ink = thin

    # 3. One geometric warp: letter-spacing jitter (a smooth monotone horizontal stretch of
    # the source, so joined scripts stay joined), slant (shear), small rotation, baseline
    # wobble and a small elastic distortion. Built as the inverse map cv2.remap needs.
    n_chars = len(text)
    tracking = float(rng.uniform(-0.06, 0.12))
    stretch = (1.0 + tracking) * (1.0 + _smooth_1d(rng, w, n_chars + 2, 0.10).clip(-0.3, 0.3))
    fwd = np.concatenate([[0.0], np.cumsum(stretch)[:-1]]).astype(np.float32)  # source col -> output col
    shear = float(np.clip(rng.normal(0.05, 0.17), -0.4, 0.5))
    angle = float(np.clip(rng.normal(0.0, 0.02), -0.05, 0.05))
    off = int(np.ceil(abs(shear) * h + abs(angle) * w)) + 2
    out_w = int(np.ceil(fwd[-1])) + 2 * off + 1
    yc = pad + (bottom - top) * 0.6
    ys, xs = np.mgrid[0:h, 0:out_w].astype(np.float32)
    x1 = xs - off + shear * (ys - yc)
    u = np.interp(x1.ravel(), fwd, np.arange(w, dtype=np.float32), left=-10.0, right=w + 10.0).reshape(h, out_w).astype(np.float32)
    wobble = _smooth_1d(rng, w, max(2, n_chars // 2 + 2), 0.03 * size)
    ui = np.clip(u, 0, w - 1).astype(np.int32)
    map_x = u
    map_y = ys + wobble[ui] - angle * (u - pad)
    amp = float(rng.uniform(0.0, 0.02)) * size
    if amp > 0.2:
        cell = 0.6 * size
        map_x = map_x + _smooth_2d(rng, h, out_w, cell, amp)
        map_y = map_y + _smooth_2d(rng, h, out_w, cell, amp)
    alpha = cv2.remap(ink, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    # 4. Scan: blur, ink and paper gray levels, pen-pressure variation, paper texture, noise.
    alpha = alpha.astype(np.float32) / 255.0
    sigma = float(rng.uniform(0.3, 0.9))
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    oh, ow = alpha.shape
    ink_level = float(rng.uniform(10, 100)) + _smooth_2d(rng, oh, ow, size, float(rng.uniform(0, 15)))
    paper_level = float(rng.uniform(215, 252))
    paper = paper_level + _smooth_2d(rng, oh, ow, float(rng.uniform(8, 40)), float(rng.uniform(0, 5)))
    img = paper * (1.0 - alpha) + ink_level * alpha
    img += rng.normal(0.0, float(rng.uniform(0.5, 5.0)), img.shape).astype(np.float32)

    # 5. Tight crop around the ink with a small random margin (like IAM word boxes).
    rows = np.nonzero(alpha.max(axis=1) > 0.25)[0]
    cols = np.nonzero(alpha.max(axis=0) > 0.25)[0]
    if len(rows) == 0:
        rows, cols = np.array([0, oh - 1]), np.array([0, ow - 1])
    m = rng.integers(1, max(3, int(0.12 * size)) + 1, size=4)
    y0, y1 = max(0, rows[0] - m[0]), min(oh, rows[-1] + 1 + m[1])
    x0, x1 = max(0, cols[0] - m[2]), min(ow, cols[-1] + 1 + m[3])
    return np.clip(img[y0:y1, x0:x1] + 0.5, 0, 255).astype(np.uint8)


def _rng(config: SyntheticConfig, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([GENERATOR_VERSION, config.seed, _SPLIT_CODE[split], index]))


def _choose_font(pool: Sequence[FontSpec], rng: np.random.Generator) -> FontSpec:
    families = sorted({f.family for f in pool})
    fam = families[int(rng.integers(len(families)))]
    files = [f for f in pool if f.family == fam]
    return files[int(rng.integers(len(files)))]


def render_sample_with_font(config: SyntheticConfig, split: str, index: int) -> tuple[np.ndarray, str, FontSpec]:
    """:func:`render_sample` that also says which font drew the sample."""
    _check_split(split)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    rng = _rng(config, split, index)
    font = _choose_font(split_fonts(config, split), rng)
    text = sample_text(config, rng, font.chars)
    return render_text(font, text, rng, config.font_size), text, font


def render_sample(config: SyntheticConfig | None, split: str, index: int) -> tuple[np.ndarray, str]:
    """Sample ``index`` of ``split``: (raw word crop as 2-D uint8, label). Deterministic."""
    image, text, _ = render_sample_with_font(config or SyntheticConfig(), split, index)
    return image, text


# --------------------------------------------------------------------------------------
# Materialising to the project's folder format
# --------------------------------------------------------------------------------------


def _split_fingerprint(config: SyntheticConfig, split: str) -> dict:
    d = config.to_dict()
    for s in SPLITS:
        d.pop(f"n_{s}")
    return {
        "generator_version": GENERATOR_VERSION,
        "split": split,
        "n": config.size(split),
        "config": d,
        "fonts": sorted(f"{f.name}:{''.join(f.dropped)}" for f in split_fonts(config, split)),
    }


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_tmp(root: Path) -> None:
    """Delete temp folders left by interrupted generations (their process is gone)."""
    for p in root.glob(".*.tmp-*"):
        m = re.search(r"\.tmp-(\d+)-", p.name)
        if m and not _pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


_WORKER_STATE: dict = {}


def _worker_init(config: SyntheticConfig, split: str, out_dir: str) -> None:
    torch = sys.modules.get("torch")  # keep torch, if the parent loaded it, to one thread
    if torch is not None:
        torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _WORKER_STATE.update(config=config, split=split, out_dir=out_dir)


def _write_one(index: int) -> tuple[int, str, str]:
    cfg, split, out_dir = _WORKER_STATE["config"], _WORKER_STATE["split"], _WORKER_STATE["out_dir"]
    image, text = render_sample(cfg, split, index)
    rel = f"images/{index:06d}.png"
    if not cv2.imwrite(os.path.join(out_dir, rel), image):
        raise OSError(f"could not write {os.path.join(out_dir, rel)}")
    return index, rel, text


def _generate_split(root: Path, config: SyntheticConfig, split: str, fingerprint: dict, progress: bool, workers: int) -> None:
    n = config.size(split)
    tmp = root / f".{split}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (tmp / "images").mkdir(parents=True)
    try:
        rows: list[tuple[str, str]] = []
        it_desc = f"synthetic {split}"
        if workers > 1 and n >= 200:
            import multiprocessing as mp

            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            with ctx.Pool(workers, initializer=_worker_init, initargs=(config, split, str(tmp))) as pool:
                results = pool.imap(_write_one, range(n), chunksize=32)
                rows = [(rel, text) for _, rel, text in _progress(results, n, it_desc, progress)]
        else:
            _worker_init(config, split, str(tmp))
            rows = [(rel, text) for _, rel, text in _progress(map(_write_one, range(n)), n, it_desc, progress)]
        with open(tmp / "labels.tsv", "w", encoding="utf-8", newline="\n") as f:
            for rel, text in rows:
                f.write(f"{rel}\t{text}\n")
        _write_json_atomic(tmp / "manifest.json", fingerprint)
        dest = root / split
        if dest.exists():
            old = root / f".{split}.old.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(dest, old)
            os.rename(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", dynamic_ncols=True)


def materialize(
    root: str | Path,
    config: SyntheticConfig | None = None,
    progress: bool = True,
    workers: int = 2,
    splits: Sequence[str] = SPLITS,
) -> Path:
    """Generate the synthetic dataset under ``root`` unless it is already there (cache).

    Each split is written into a temp folder and renamed into place only when complete, with
    its own ``manifest.json``; a split whose manifest records the same generator version,
    config and fonts is kept as is (so changing ``n_test_unseen`` regenerates only
    ``test_unseen``). ``<root>/manifest.json`` records the whole config. Returns ``root``.
    """
    config = config or SyntheticConfig()
    root = Path(root)
    top = {"generator_version": GENERATOR_VERSION, "config": config.to_dict(), "splits": {s: config.size(s) for s in SPLITS}}
    existing = _read_json(root / "manifest.json")
    if existing is not None and existing.get("generator_version") == top["generator_version"] and existing.get("config") == top["config"] and all((root / s / "labels.tsv").is_file() for s in splits):
        return root
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(root)
    for split in splits:
        fingerprint = _split_fingerprint(config, split)
        dest = root / split
        if dest.exists():
            found = _read_json(dest / "manifest.json")
            if found is None:
                raise FileExistsError(f"{dest} exists but was not written by this generator (no manifest.json): move it away or choose another root")
            if found == fingerprint and (dest / "labels.tsv").is_file():
                continue
        t0 = time.perf_counter()
        _generate_split(root, config, split, fingerprint, progress, workers)
        log.info("synthetic %s: %d images in %.1f s", split, config.size(split), time.perf_counter() - t0)
    if tuple(splits) == SPLITS:
        _write_json_atomic(root / "manifest.json", top)
    return root


# --------------------------------------------------------------------------------------
# Contact sheet, speed, CLI
# --------------------------------------------------------------------------------------


def contact_sheet(out: str | Path, config: SyntheticConfig | None = None, per_font: int = 6, seed: int = 0) -> Path:
    """PNG with one row per font: ``per_font`` raw crops, then the 32x128 canvases (2x) of the first 3."""
    from htr.data.preprocess import to_canvas

    config = config or SyntheticConfig()
    fonts = available_fonts(config.extra_fonts)
    heldout = {f.name for f in split_fonts(config, "test_unseen")}
    row_h, label_w, gap = 72, 210, 8
    rows = []
    for fi, font in enumerate(fonts):
        rng = np.random.default_rng([seed, fi])
        crops, texts = [], []
        for _ in range(per_font):
            text = sample_text(config, rng, font.chars)
            crops.append(render_text(font, text, rng, config.font_size))
            texts.append(text)
        tiles = []
        for c in crops:
            s = min(row_h / c.shape[0], 260 / c.shape[1])
            tiles.append(cv2.resize(c, (max(1, round(c.shape[1] * s)), max(1, round(c.shape[0] * s))), interpolation=cv2.INTER_AREA))
        for c in crops[:3]:
            canvas = cv2.resize(to_canvas(c), (256, 64), interpolation=cv2.INTER_NEAREST)
            canvas = cv2.copyMakeBorder(canvas, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
            tiles.append(canvas)
        width = label_w + sum(t.shape[1] + gap for t in tiles)
        row = np.full((row_h + 24, width), 255, np.uint8)
        x = label_w
        for t in tiles:
            row[2 : 2 + t.shape[0], x : x + t.shape[1]] = t
            x += t.shape[1] + gap
        im = Image.fromarray(row)
        d = ImageDraw.Draw(im)
        tag = " (held out)" if font.name in heldout else ""
        d.text((4, 4), f"{font.name}{tag}", fill=0)
        d.text((4, 20), f"{font.license}", fill=90)
        if font.dropped.strip():
            d.text((4, 36), f"no: {font.dropped.strip()}"[:34], fill=90)
        d.text((label_w, row_h + 8), "   |   ".join(texts), fill=60)
        rows.append(np.asarray(im))
    width = max(r.shape[1] for r in rows)
    sheet = np.full((sum(r.shape[0] + 4 for r in rows), width), 200, np.uint8)
    y = 0
    for r in rows:
        sheet[y : y + r.shape[0], : r.shape[1]] = r
        y += r.shape[0] + 4
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out)
    return out


def benchmark(n: int = 300, config: SyntheticConfig | None = None) -> dict[str, float]:
    """Samples/s of rendering (single process) vs loading a PNG + ``to_canvas``; also PNG bytes."""
    import tempfile

    from htr.data.preprocess import load_image, to_canvas

    config = config or SyntheticConfig()
    render_sample(config, "train", 0)  # warm the caches (fonts, vocabulary)
    t0 = time.perf_counter()
    images = [render_sample(config, "train", i)[0] for i in range(n)]
    render_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for im in images:
        to_canvas(im)
    canvas_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, im in enumerate(images):
            p = os.path.join(d, f"{i}.png")
            cv2.imwrite(p, im)
            paths.append(p)
        nbytes = sum(os.path.getsize(p) for p in paths)
        t0 = time.perf_counter()
        for p in paths:
            to_canvas(load_image(p))
        load_s = time.perf_counter() - t0
    return {
        "render_per_s": n / render_s,
        "render_plus_canvas_per_s": n / (render_s + canvas_s),
        "load_plus_canvas_per_s": n / load_s,
        "png_kib_mean": nbytes / n / 1024,
        "crop_h_mean": float(np.mean([im.shape[0] for im in images])),
        "crop_w_mean": float(np.mean([im.shape[1] for im in images])),
    }


def _config_from_args(args: argparse.Namespace) -> SyntheticConfig:
    kw = {"seed": args.seed, "extra_fonts": args.extra_fonts}
    if getattr(args, "heldout_fonts", None):
        kw["heldout_fonts"] = tuple(s.strip() for s in args.heldout_fonts.split(",") if s.strip())
    for name in ("n_train", "n_val", "n_test", "n_test_unseen"):
        if getattr(args, name, None) is not None:
            kw[name] = getattr(args, name)
    return SyntheticConfig(**kw)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m htr.data.synthetic", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--extra-fonts", default=None, help="glob of extra .ttf/.otf files")
        p.add_argument("--heldout-fonts", default=None, help=f"comma list (default {','.join(DEFAULT_HELDOUT)})")

    g = sub.add_parser("generate", help="materialise the splits to a folder")
    g.add_argument("--root", default="data/synthetic")
    for name in ("train", "val", "test", "test-unseen"):
        g.add_argument(f"--n-{name}", type=int, default=None)
    g.add_argument("--workers", type=int, default=2)
    g.add_argument("--no-progress", action="store_true")
    common(g)
    c = sub.add_parser("contact-sheet", help="PNG of random samples, one row per font")
    c.add_argument("--out", default="data/contact_sheet.png")
    c.add_argument("--per-font", type=int, default=6)
    common(c)
    f = sub.add_parser("fonts", help="list fonts, their licences and dropped characters")
    common(f)
    b = sub.add_parser("bench", help="render vs load speed")
    b.add_argument("-n", type=int, default=300)
    common(b)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = _config_from_args(args)
    if args.command == "generate":
        t0 = time.perf_counter()
        root = materialize(args.root, config, progress=not args.no_progress, workers=args.workers)
        nbytes = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
        print(f"{root}: ready in {time.perf_counter() - t0:.1f} s, {nbytes / 2**20:.1f} MiB")
    elif args.command == "contact-sheet":
        print(contact_sheet(args.out, config, per_font=args.per_font, seed=args.seed))
    elif args.command == "fonts":
        unseen = {f.name for f in split_fonts(config, "test_unseen")}
        for font in available_fonts(config.extra_fonts):
            role = "test_unseen" if font.name in unseen else "train/val/test"
            var = f" wght {font.wght_min}-{font.wght_max}" if font.variable else ""
            print(f"{font.name:22s} {font.family:20s} {font.license:11s} {role:15s} dropped={font.dropped.strip()!r}{var}")
    elif args.command == "bench":
        cv2.setNumThreads(1)
        for k, v in benchmark(args.n, config).items():
            print(f"{k}: {v:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
