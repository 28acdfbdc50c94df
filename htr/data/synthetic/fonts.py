"""The synthetic writers' fonts: the vendored handwriting fonts, their checks and split roles.

The fonts live in ``htr/data/fonts/`` (files, licences, ``fonts.json`` with each font's family,
style, whether its script joins letters and whether it is held out; ``python -m tools.fetch_fonts``
re-creates them from npm's ``@fontsource`` packages). Every font is checked when loaded: cmap
coverage of the IAM charset, glyphs that draw nothing, lowercase letters mapped to or drawn like
their capitals (small caps). A font without all 52 letters is dropped with a log line; a kept
font never renders the characters it lacks (the text is resampled).
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import ImageFont

from htr.errors import HTRError
from htr.text import IAM_CHARSET

log = logging.getLogger(__name__)

FONTS_DIR = Path(__file__).resolve().parent.parent / "fonts"
MANIFEST = FONTS_DIR / "fonts.json"

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Lowercase letters whose shape differs clearly from the capital: a font drawing them like
# the capital (small caps, all-caps hands) draws them "as something else".
_CASE_PROBE = "abdeghnqr"


class FontError(HTRError, ValueError):
    """A font setting that cannot be used; the message says which and what to do."""


@dataclass(frozen=True)
class FontSpec:
    """One font file and the IAM characters it can draw faithfully."""

    name: str  # e.g. "Caveat-400"
    path: Path
    family: str  # e.g. "caveat"
    license: str
    style: str  # print | cursive | marker (extra fonts: "print")
    joined: bool  # letters connect when shaped: render the word whole, never glyph by glyph
    heldout: bool  # in the vendored held-out set (test_unseen only)
    chars: str  # usable IAM characters
    dropped: str  # IAM characters not usable (missing glyph or drawn as something else)

    def matches(self, key: str) -> bool:
        key = key.lower()
        return key in (self.name.lower(), self.path.name.lower(), self.path.stem.lower(), self.family.lower())


def _glyph_bitmap(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray:
    mask = font.getmask(ch)
    if not mask.size[0] * mask.size[1]:
        return np.zeros((0, 0), np.uint8)
    return np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0])


def _normalized_shape(arr: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(arr > 64)
    if len(ys) == 0:
        return None
    crop = arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return cv2.resize(crop, (24, 24), interpolation=cv2.INTER_AREA) > 96


@lru_cache(maxsize=None)
def check_font(path: str) -> tuple[str, str, str]:
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
    empty = [c for c in IAM_CHARSET if c != " " and c not in bad and _normalized_shape(_glyph_bitmap(font, c)) is None]
    if empty:
        reasons.append(f"empty glyph for {''.join(empty)!r}")
        bad.update(empty)
    caps_like = []
    for c in _CASE_PROBE:
        if c in bad or c.upper() in bad:
            continue
        lo, up = _normalized_shape(_glyph_bitmap(font, c)), _normalized_shape(_glyph_bitmap(font, c.upper()))
        if lo is not None and up is not None and (lo & up).sum() / max(1, (lo | up).sum()) > 0.8:
            caps_like.append(c)
    if caps_like:
        reasons.append(f"lowercase drawn like the capital for {''.join(caps_like)!r}")
        bad.update(caps_like)
        if len(caps_like) >= len(_CASE_PROBE) // 2:  # a small-caps font: no lowercase at all
            bad.update(_LETTERS[:26])
    chars = "".join(c for c in IAM_CHARSET if c not in bad)
    dropped = "".join(c for c in IAM_CHARSET if c in bad)
    return chars, dropped, "; ".join(reasons)


def _candidates(extra_glob: str | None) -> list[dict]:
    """Manifest entries of the vendored fonts plus entries for ``extra_glob`` files."""
    try:
        entries = json.loads(MANIFEST.read_text(encoding="utf-8"))["fonts"]
    except (OSError, ValueError, KeyError) as err:
        raise FontError(f"{MANIFEST}: cannot read the font manifest ({err}); restore htr/data/fonts/ from git") from None
    out = [dict(e, path=FONTS_DIR / e["file"]) for e in entries]
    if extra_glob:
        for p in sorted(glob.glob(os.path.expanduser(extra_glob), recursive=True)):
            if p.lower().endswith((".ttf", ".otf", ".woff", ".woff2")):
                out.append({"family": Path(p).stem, "name": Path(p).stem, "path": Path(p), "license": "unknown", "style": "print", "joined": False, "heldout": False})
    return out


@lru_cache(maxsize=16)
def _available_fonts(extra_glob: str | None) -> tuple[FontSpec, ...]:
    fonts = []
    for e in _candidates(extra_glob):
        path = Path(e["path"])
        try:
            chars, dropped, reason = check_font(str(path))
        except Exception as err:  # noqa: BLE001 - an unreadable font file is skipped, not fatal
            log.warning("font %s skipped: unreadable (%s)", path, err)
            continue
        spec = FontSpec(e["name"], path, e["family"], e["license"], e["style"], bool(e["joined"]), bool(e["heldout"]), chars, dropped)
        if not all(c in spec.chars for c in _LETTERS):
            log.warning("font %s dropped: %s", spec.name, reason)
            continue
        if dropped:
            log.debug("font %s: characters %r not used (%s)", spec.name, dropped, reason)
        fonts.append(spec)
    return tuple(fonts)


def available_fonts(extra_glob: str | None = None) -> list[FontSpec]:
    """Usable handwriting fonts: the vendored ones plus ``extra_glob`` files (.ttf/.otf/.woff/.woff2)."""
    return list(_available_fonts(extra_glob))


def heldout_fonts(fonts: Sequence[FontSpec], keys: Sequence[str] | None) -> list[FontSpec]:
    """The held-out fonts: the manifest's (``keys`` None) or those matching ``keys``."""
    if keys is None:
        return [f for f in fonts if f.heldout]
    out: list[FontSpec] = []
    for key in keys:
        hits = [f for f in fonts if f.matches(key)]
        if not hits:
            raise FontError(f"synthetic.heldout_fonts: font {key!r} not found; see `python -m htr.data.synthetic fonts` for the names")
        out.extend(h for h in hits if h not in out)
    return out


def split_fonts(fonts: Sequence[FontSpec], heldout: Sequence[FontSpec], split: str) -> list[FontSpec]:
    """The font pool of a split: the held-out fonts for ``test_unseen``, all others otherwise."""
    pool = list(heldout) if split == "test_unseen" else [f for f in fonts if f not in heldout]
    if not pool:
        raise FontError(f"no fonts left for split {split!r} ({len(heldout)} of {len(fonts)} fonts held out)")
    return pool


@lru_cache(maxsize=None)
def em_scale(path: str) -> float:
    """Factor that gives this font the x-height of a typical hand (0.45 em).

    Fonts differ a lot at the same nominal size (Homemade Apple, Meddon are huge): writers'
    sizes are meant as handwriting sizes, so the em is rescaled by the x-height."""
    font = ImageFont.truetype(path, 100)
    _, top, _, bottom = font.getbbox("x", anchor="ls")
    return float(np.clip(45.0 / max(1, bottom - top), 0.5, 2.0))


@lru_cache(maxsize=2048)
def pil_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)
