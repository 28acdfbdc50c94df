"""Embedded default dataset: synthetic IAM-like handwritten words (no download).

Many writers, not a few fonts: 113 vendored handwriting font families (``htr/data/fonts/``),
each used by many synthetic writers with their own habits (slant, size, pen, spacing, glyph
jitter, wobble, elastic distortion, ink), scanned on varied paper. One job per module:

- :mod:`~htr.data.synthetic.fonts`: the vendored fonts, their checks, held-out set
- :mod:`~htr.data.synthetic.text`: IAM-like labels from English word frequencies
- :mod:`~htr.data.synthetic.writer`: a writer and a scan turn a word into a gray crop
- :mod:`~htr.data.synthetic.dataset`: splits, writers per split, the materialised cache
- ``python -m htr.data.synthetic``: generate, contact sheet, font list, speed

The generator returns raw crops; the project's preprocessing
(:func:`htr.data.preprocess.to_canvas`) is applied later by the data loader, never here.
"""

from htr.data.synthetic.dataset import (
    GENERATOR_VERSION,
    SPLITS,
    SyntheticConfig,
    materialize,
    render_sample,
    render_sample_with_writer,
    split_writer,
)
from htr.data.synthetic.fonts import FontError, FontSpec, available_fonts
from htr.data.synthetic.text import sample_text
from htr.data.synthetic.writer import Writer, render_word, sample_writer

__all__ = [
    "GENERATOR_VERSION",
    "SPLITS",
    "FontError",
    "FontSpec",
    "SyntheticConfig",
    "Writer",
    "available_fonts",
    "materialize",
    "render_sample",
    "render_sample_with_writer",
    "render_word",
    "sample_text",
    "sample_writer",
    "split_writer",
]
