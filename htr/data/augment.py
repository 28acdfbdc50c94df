"""Augmentation pipelines (albumentations), applied to the training split only.

Input is the contrast-normalised crop (``normalize_contrast``: the data loader makes it, or
reads it from its cache). ``none`` is the baseline: the project's preprocessing, the word
left-aligned (or centred: ``align``). ``translate``
places the fitted (and mildly scaled/sheared) word anywhere in the 32x128 canvas, so the
model can no longer rely on "every word starts at x=0". ``noise`` adds sensor noise,
gray specks/blobs on the background and mild blur, so that background pixels stop
carrying evidence. ``translate+noise`` is the augmented arm.

Randomness: the transform of sample ``i`` in epoch ``e`` depends only on (seed, e, i), so
results do not depend on the number of workers (see ``WordTransform.__call__``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import albumentations as A
import cv2
import numpy as np

from htr.data.preprocess import BACKGROUND, HEIGHT, WIDTH, Alignment, crop_to_canvas, fit_word, place
from htr.errors import ConfigError, in_range

# A Literal so that the command lines check the value and name the choices (htr/argparsing.py).
Augmentation = Literal["none", "translate", "noise", "translate+noise"]
AUGMENTATIONS: tuple[str, ...] = get_args(Augmentation)


@dataclass(frozen=True)
class Translation:
    """How ``translate`` moves and reshapes a word (``data.translation`` overrides the defaults;
    the 18-run study and the models shipped before the real-hands data trained with
    ``p_in_place`` 0).

    ``scale``: size range of the fitted word (drawn with chance ``p_scale``; a smaller word has room
    to move), ``shear``/``rotate``: degrees either way (with chance ``p_affine``), ``p_in_place``:
    share of samples left as the baseline sees them (full size, aligned)."""

    scale: tuple[float, float] = (0.6, 1.0)
    p_scale: float = 0.8
    shear: float = 10.0
    rotate: float = 2.0
    p_affine: float = 0.7
    # 30 % of samples as the baseline sees them: full-size words stay common (data/README.md).
    p_in_place: float = 0.3

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise ConfigError("data.translation.scale", f"need 0 < min <= max <= 1, got {tuple(self.scale)}")
        for name in ("p_scale", "p_affine", "p_in_place"):
            in_range(f"data.translation.{name}", getattr(self, name), 0, 1)
        object.__setattr__(self, "scale", (float(lo), float(hi)))


class BackgroundSpecks(A.ImageOnlyTransform):
    """Random gray specks and small blobs (ellipses), as dust, bleed-through or pen marks."""

    def __init__(self, count: tuple[int, int] = (1, 6), radius: tuple[int, int] = (1, 3), gray: tuple[int, int] = (40, 200), p: float = 0.5) -> None:
        super().__init__(p=p)
        self.count, self.radius, self.gray = count, radius, gray

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return add_specks(img, self.random_generator, self.count, self.radius, self.gray)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("count", "radius", "gray")


def add_specks(
    canvas: np.ndarray,
    rng: np.random.Generator,
    count: tuple[int, int] = (1, 6),
    radius: tuple[int, int] = (1, 3),
    gray: tuple[int, int] = (40, 200),
    ink_below: int = 160,
) -> np.ndarray:
    """Draw ``count`` random gray ellipses on the background of a copy of a uint8 canvas.

    Specks keep 2 px away from ink (pixels darker than ``ink_below``) so they never change
    what the word reads as; a speck that finds no free spot in 10 tries is left out.
    """
    out = canvas.copy()
    h, w = out.shape[:2]
    ink = canvas < ink_below
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        axes = (int(rng.integers(radius[0], radius[1] + 1)), int(rng.integers(radius[0], radius[1] + 1)))
        value = int(rng.integers(gray[0], gray[1] + 1))
        angle = float(rng.uniform(0, 180))
        reach = max(axes) + 2
        for _try in range(10):
            cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
            if not ink[max(0, cy - reach) : cy + reach + 1, max(0, cx - reach) : cx + reach + 1].any():
                cv2.ellipse(out, (cx, cy), axes, angle, 0, 360, value, -1)
                break
    return out


class WordTransform:
    """Contrast-normalised word crop -> uint8 canvas (HEIGHT x WIDTH), with the chosen augmentation.

    ``align`` places the word where the model expects it (left edge or centre) whenever the
    augmentation does not place it at random.
    """

    def __init__(self, augmentation: str = "none", seed: int = 0, align: Alignment = "left", translation: Translation | None = None) -> None:
        if augmentation not in AUGMENTATIONS:
            raise ConfigError("data.augmentation", f"unknown {augmentation!r}; use one of {', '.join(AUGMENTATIONS)}")
        self.augmentation = augmentation
        self.seed = seed
        self.align = align
        self.translation = move = translation or Translation()
        self.translate = "translate" in augmentation
        self.noise = "noise" in augmentation
        # Geometry on the raw crop; edges replicated so no artificial borders appear.
        self.word_ops = A.Compose(
            [A.Affine(shear={"x": (-move.shear, move.shear), "y": (0, 0)}, rotate=(-move.rotate, move.rotate), fit_output=True, border_mode=cv2.BORDER_REPLICATE, p=move.p_affine)]
        ) if self.translate else None
        # Placement of the fitted word: shrink it a little so there is room to move, then pad at a random spot.
        self.place_ops = A.Compose(
            [
                A.RandomScale(scale_limit=(move.scale[0] - 1.0, move.scale[1] - 1.0), interpolation=cv2.INTER_AREA, p=move.p_scale),
                A.PadIfNeeded(HEIGHT, WIDTH, position="random", border_mode=cv2.BORDER_CONSTANT, fill=BACKGROUND),
            ]
        ) if self.translate else None
        self.canvas_ops = A.Compose(
            [
                BackgroundSpecks(p=0.6),
                A.GaussNoise(std_range=(0.01, 0.06), p=0.5),
                A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 0.9), p=0.3),
            ]
        ) if self.noise else None

    def __call__(self, crop: np.ndarray, index: int = 0, epoch: int = 0) -> np.ndarray:
        if self.augmentation == "none":
            return crop_to_canvas(crop, self.align)
        image = crop
        seed = int(np.random.SeedSequence([self.seed, epoch, index]).generate_state(1)[0])
        for i, ops in enumerate((self.word_ops, self.place_ops, self.canvas_ops)):
            if ops is not None:
                ops.set_random_seed(seed + i)
        # Drawn only when asked for, so the default pipeline's samples stay what they were.
        in_place = self.translation.p_in_place > 0 and np.random.default_rng(seed + 3).random() < self.translation.p_in_place
        if self.word_ops is not None and not in_place:
            image = self.word_ops(image=image)["image"]
        if self.place_ops is not None and not in_place:
            canvas = self.place_ops(image=fit_word(image))["image"]
            if canvas.shape != (HEIGHT, WIDTH):  # RandomScale may round a side up by a pixel
                canvas = place(fit_word(canvas))
        else:
            canvas = crop_to_canvas(image, self.align)
        if self.canvas_ops is not None:
            canvas = self.canvas_ops(image=canvas)["image"]
        return canvas
