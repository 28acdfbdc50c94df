"""What the synthetic writers write: IAM-like labels drawn from English word frequencies.

Words come from ``vocabulary.tsv`` beside this file: the top 30 000 English words of wordfreq
3.1.1 (CC BY-SA 4.0) with their frequencies, kept only when they are plausible IAM tokens
(IAM characters only, no digits, no tokenizer debris such as ``s``/``ll``/``ve``, single
letters only ``a`` and ``I``, pronoun ``I`` restored to its capital). The list is vendored so
that generation needs no 57 MB word-frequency package and cannot change with its releases.
Numbers and IAM's standalone punctuation tokens are generated here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from htr.text import IAM_CHARSET, ctc_min_frames

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.tsv")
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
# Prose punctuation written onto a word ("said," "Roy's" "(see"), and abbreviations with their dot.
ATTACHED_PUNCTUATION: dict[str, float] = {
    ",": 0.32,
    ".": 0.28,
    "'s": 0.12,
    ";": 0.04,
    ":": 0.04,
    "?": 0.04,
    "!": 0.03,
    '"': 0.03,  # closing quote
    '"word': 0.03,  # opening quote
    ")": 0.02,
    "(word": 0.02,
    "abbreviation": 0.03,
}
ABBREVIATIONS = ("Mr.", "Mrs.", "Dr.", "St.", "Mr", "Mrs")
_ATTACHED = tuple(ATTACHED_PUNCTUATION)
_ATTACHED_CDF = np.cumsum(np.asarray(list(ATTACHED_PUNCTUATION.values())) / sum(ATTACHED_PUNCTUATION.values()))
_PUNCT = tuple(PUNCTUATION_TOKENS)
_PUNCT_CDF = np.cumsum(np.asarray(list(PUNCTUATION_TOKENS.values())) / sum(PUNCTUATION_TOKENS.values()))


class TextConfig(Protocol):
    """The text-mix fields of :class:`~htr.data.synthetic.dataset.SyntheticConfig`."""

    p_punctuation: float
    p_number: float
    p_capitalized: float
    p_upper: float
    vocabulary_size: int
    word_freq_power: float
    p_attached: float


def label_ok(text: str) -> bool:
    """A label the recogniser can learn: IAM characters, no spaces, fits 32 CTC frames."""
    return (
        0 < len(text) <= MAX_LABEL_CHARS
        and text == text.strip()
        and all(c in IAM_CHARSET and c != " " for c in text)
        and ctc_min_frames(text) <= MAX_CTC_FRAMES
    )


@lru_cache(maxsize=8)
def vocabulary(size: int = 30000, power: float = 1.0) -> tuple[tuple[str, ...], np.ndarray]:
    """The ``size`` most frequent words (of the vendored list) and their cumulative sampling
    probabilities, word probability ~ frequency ** ``power``."""
    words, freqs = [], []
    with open(VOCABULARY_FILE, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            word, freq = line.rstrip("\n").split("\t")
            if label_ok(word):
                words.append(word)
                freqs.append(float(freq) ** power)
            if len(words) >= size:
                break
    p = np.asarray(freqs, dtype=np.float64)
    return tuple(words), np.cumsum(p / p.sum())


def _pick(cdf: np.ndarray, rng: np.random.Generator) -> int:
    return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


def sample_number(rng: np.random.Generator) -> str:
    """A number as IAM writers write them: 42, 1851, 3,000, 2.5, 3rd."""
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


def attach_punctuation(word: str, rng: np.random.Generator) -> str:
    """``word`` as prose writes it: with a comma, full stop, possessive, quote or bracket, or an abbreviation."""
    kind = _ATTACHED[_pick(_ATTACHED_CDF, rng)]
    if kind == "abbreviation":
        return ABBREVIATIONS[int(rng.integers(len(ABBREVIATIONS)))]
    if kind.endswith("word"):  # an opening mark goes before the word
        return kind[0] + word
    return word + kind


def sample_text(config: TextConfig, rng: np.random.Generator, chars: str = IAM_CHARSET) -> str:
    """One IAM-like label that uses only ``chars`` (resampled until it does)."""
    words, cdf = vocabulary(config.vocabulary_size, config.word_freq_power)
    allowed = set(chars)
    for _ in range(100):
        u = rng.random()
        if u < config.p_punctuation:
            text = _PUNCT[_pick(_PUNCT_CDF, rng)]
        elif u < config.p_punctuation + config.p_number:
            text = sample_number(rng)
        else:
            text = words[_pick(cdf, rng)]
            v = rng.random()
            if v < config.p_upper:
                text = text.upper()
            elif v < config.p_upper + config.p_capitalized:
                text = text[:1].upper() + text[1:]
            if config.p_attached > 0 and rng.random() < config.p_attached:
                text = attach_punctuation(text, rng)
        if label_ok(text) and set(text) <= allowed:
            return text
    return "the"  # every usable font has all letters
