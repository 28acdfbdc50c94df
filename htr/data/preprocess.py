"""The one preprocessing path: any word image -> IAM-style left-aligned 1x32x128 tensor.

Training, evaluation and diagnostics all go through these functions. The steps are kept
apart so that augmentation can act between them (e.g. random placement instead of left
alignment) and diagnostics can edit the uint8 canvas before normalising it:

    load_image -> normalize_contrast (paper -> white, ink -> black: gray, dim or unevenly lit
    scans look like clean ones; the result is the "crop", which the data loader may cache)
    -> fit_word (keep aspect ratio, fit into 32x128) -> place (left-aligned as in IAM, or
    centred: the model's ``align``) -> normalize (uint8 canvas -> float tensor)

The canvas stays a linear 0..255 gray image: diagnostics edit and marginalise canvas pixels,
after the contrast normalisation of the raw crop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from htr.errors import HTRError

HEIGHT = 32
WIDTH = 128
BACKGROUND = 255  # fill value of the canvas (white paper), in 0..255 gray levels

# Where a word sits on the canvas: IAM/SimpleHTR-2018 style at the left edge, or centred (what
# SimpleHTR moved to later). A property of a model: it is saved in the checkpoint (``align``).
Alignment = Literal["left", "centre"]
ALIGNMENTS: tuple[str, ...] = get_args(Alignment)


class ImageError(HTRError, ValueError):
    """An image file that cannot be used; the message names the file and the reason."""


def load_image(path: str | Path) -> np.ndarray:
    """Read any image file as a 2-D uint8 grayscale array (RGBA on white, 16-bit scaled down)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            im.load()
            return to_gray_uint8(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: unreadable image ({err})") from None


def to_gray_uint8(im: Image.Image) -> np.ndarray:
    """PIL image of any mode -> 2-D uint8 gray; transparency is composited on white."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(im.convert("L"), dtype=np.uint8).copy()


def normalize_contrast(image: np.ndarray, ink_percentile: float = 0.5, min_range: float = 0.25) -> np.ndarray:
    """Flat-field and stretch a raw word crop: paper -> 255, darkest ink -> 0.

    The paper is estimated by a gray-level closing (a max filter wider than the strokes, which
    removes the ink) smoothed into a lighting field; dividing by it makes gray, dim or unevenly
    lit paper uniformly white. Otsu's threshold then splits paper from ink: the median paper
    gray goes to 255 and the ``ink_percentile`` gray to 0 (whatever share of the crop the ink
    covers). The gain is capped (``min_range`` of the full scale) so an almost empty crop (a
    faint dot) is not blown up into noise. This also removes the step between a crop's paper
    and the white canvas fill around it.
    """
    if image.ndim != 2 or image.size == 0:
        raise ImageError(f"expected a non-empty 2-D gray image, got shape {image.shape}")
    img = image.astype(np.float32)
    h, w = img.shape
    k = max(3, (min(h, w) // 3) | 1)  # odd, wider than a stroke of a word this size
    paper = cv2.dilate(img, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    paper = cv2.GaussianBlur(paper, (0, 0), k / 2)
    flat = np.clip(img / np.maximum(paper, 1.0), 0.0, 1.0)  # paper ~1 everywhere, ink < 1
    flat8 = (flat * 255.0 + 0.5).astype(np.uint8)
    threshold, _ = cv2.threshold(flat8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    paper_px = flat8[flat8 > threshold]
    hi = float(np.median(paper_px)) / 255.0 if paper_px.size else 1.0
    lo = min(float(np.percentile(flat, ink_percentile)), hi - min_range)
    out = (flat - lo) / (hi - lo) * 255.0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def load_crop(path: str | Path) -> np.ndarray:
    """An image file -> its contrast-normalised crop (what the crop cache stores)."""
    return normalize_contrast(load_image(path))


def fit_word(image: np.ndarray, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Scale a word image, keeping its aspect ratio, so that it fits into ``height`` x ``width``."""
    if image.ndim != 2 or image.size == 0:
        raise ImageError(f"expected a non-empty 2-D gray image, got shape {image.shape}")
    h, w = image.shape
    scale = min(height / h, width / w)
    new_h = min(height, max(1, round(h * scale)))
    new_w = min(width, max(1, round(w * scale)))
    if (new_h, new_w) == (h, w):
        return image.copy()
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (new_w, new_h), interpolation=interpolation)


def place(
    word: np.ndarray,
    x: int = 0,
    y: int | None = None,
    height: int = HEIGHT,
    width: int = WIDTH,
    background: int = BACKGROUND,
) -> np.ndarray:
    """Paste a fitted word on a ``background`` canvas at column ``x`` (row ``y``; centred if None)."""
    h, w = word.shape
    if h > height or w > width:
        raise ValueError(f"word of {h}x{w} does not fit a {height}x{width} canvas; call fit_word first")
    if y is None:
        y = (height - h) // 2
    if not (0 <= x <= width - w and 0 <= y <= height - h):
        raise ValueError(f"offset ({x}, {y}) puts a {h}x{w} word outside the {height}x{width} canvas")
    canvas = np.full((height, width), background, dtype=np.uint8)
    canvas[y : y + h, x : x + w] = word
    return canvas


def word_x(word_width: int, align: Alignment = "left", width: int = WIDTH) -> int:
    """Column where a fitted word of ``word_width`` px starts on a ``width``-px canvas."""
    if align == "left":
        return 0
    if align == "centre":
        return (width - word_width) // 2
    raise ValueError(f"align: unknown {align!r}; use one of {', '.join(ALIGNMENTS)}")


def crop_to_canvas(crop: np.ndarray, align: Alignment = "left", height: int = HEIGHT, width: int = WIDTH, background: int = BACKGROUND) -> np.ndarray:
    """A contrast-normalised crop -> canvas: fit the word, place it (``align``), vertically centred."""
    word = fit_word(crop, height, width)
    return place(word, word_x(word.shape[1], align, width), None, height, width, background)


def to_canvas(image: np.ndarray, align: Alignment = "left", height: int = HEIGHT, width: int = WIDTH, background: int = BACKGROUND) -> np.ndarray:
    """Any raw word image -> canvas: normalise the contrast, fit, place at the left edge (IAM) or centred."""
    return crop_to_canvas(normalize_contrast(image), align, height, width, background)


def normalize(canvas: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8/float gray canvas(es) in 0..255 -> float tensor in 0..1 with a channel axis.

    (H, W) -> (1, H, W); (B, H, W) -> (B, 1, H, W); (B, 1, H, W) stays. Linear, so a gray
    value g in the canvas is g / 255 in the tensor (the diagnostics rely on this).
    """
    t = torch.as_tensor(canvas).float() / 255.0
    if t.dim() == 2 or t.dim() == 3:
        t = t.unsqueeze(-3)
    return t


def preprocess(image: np.ndarray, align: Alignment = "left") -> torch.Tensor:
    """Any 2-D uint8 word image -> 1x32x128 float tensor (left-aligned as IAM, or centred)."""
    return normalize(to_canvas(image, align))
