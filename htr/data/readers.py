"""Dataset readers: IAM words, and any folder of word images with a labels.tsv.

Readers return ``WordSample`` lists. Nothing is dropped silently: every skipped entry is
counted by reason and reported in ONE summary warning per reader call (with a few names).
"""

from __future__ import annotations

import logging
import random
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from htr.errors import ConfigError, HTRError
from htr.text import Charset, ctc_min_frames

log = logging.getLogger(__name__)


class DatasetError(HTRError, ValueError):
    """A dataset that cannot be read at all; the message names the file and what to do."""


@dataclass(frozen=True)
class WordSample:
    id: str
    path: Path
    text: str


@dataclass
class SkipReport:
    """Counts of skipped entries by reason, with a few examples each."""

    source: str
    reasons: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, reason: str, what: str) -> None:
        self.reasons[reason].append(what)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.reasons.values())

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.reasons.items()}

    def warn(self) -> None:
        if not self.total:
            return
        parts = [f"{len(v)} {k} (e.g. {', '.join(v[:3])})" for k, v in sorted(self.reasons.items())]
        log.warning("%s: skipped %d entries: %s", self.source, self.total, "; ".join(parts))


def text_lines(path: Path, report: SkipReport) -> Iterator[tuple[int, str]]:
    """(line number, line) of a label file, blank and ``#`` comment lines passed over; a line that
    is not UTF-8 is skipped and counted in ``report`` (one bad byte costs one label, not the file)."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                report.add("lines not UTF-8", f"line {lineno}")
                continue
            if line.strip() and not line.startswith("#"):
                yield lineno, line


def form_id(word_id: str) -> str:
    """IAM form of a word id: a01-000u-00-00 -> a01-000u."""
    return "-".join(word_id.split("-")[:2])


def line_id(word_id: str) -> str:
    return "-".join(word_id.split("-")[:3])


def read_iam_words(root: str | Path, include_err: bool = False) -> tuple[list[WordSample], SkipReport]:
    """Parse IAM's ``ascii/words.txt`` (or ``words.txt``) under ``root``; images under ``root/words``.

    Lines: ``a01-000u-00-00 ok 154 408 768 27 51 AT A``; ``#`` lines are comments; field 2 is
    the segmentation flag (``err`` lines are skipped unless ``include_err``); the
    transcription is field 9 on (joined by spaces, for the rare ones that contain spaces).
    Missing or zero-byte images are skipped and counted; unreadable ones are caught later.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: IAM root not found; pass --data.root /path/to/iam (with words.txt and words/)")
    words_txt = next((p for p in (root / "ascii" / "words.txt", root / "words.txt") if p.is_file()), None)
    if words_txt is None:
        raise DatasetError(f"{root}: no words.txt (looked in {root}/ascii/words.txt and {root}/words.txt)")
    report = SkipReport(str(words_txt))
    samples, seen = [], set()
    for lineno, line in text_lines(words_txt, report):
        fields = line.split(" ")
        if len(fields) < 9:
            report.add("lines with fewer than 9 fields", f"line {lineno}")
            continue
        wid, flag = fields[0], fields[1]
        if wid in seen:
            report.add("duplicate word ids", f"line {lineno}: {wid}")
            continue
        seen.add(wid)
        if flag == "err" and not include_err:
            report.add("segmentation 'err' lines (data.include_err=false)", wid)
            continue
        parts = wid.split("-")
        if len(parts) != 4:
            report.add("malformed word ids", f"line {lineno}: {wid}")
            continue
        path = root / "words" / parts[0] / f"{parts[0]}-{parts[1]}" / f"{wid}.png"
        samples.append(WordSample(wid, path, " ".join(fields[8:])))
    samples = check_files(samples, report)
    report.warn()
    return samples, report


def read_labels_tsv(labels: str | Path) -> tuple[list[WordSample], SkipReport]:
    """Folder format: ``relative/path.png<TAB>text`` per line, paths relative to the tsv's folder."""
    labels = Path(labels)
    if not labels.is_file():
        raise DatasetError(f"{labels}: labels file not found; a folder dataset needs labels.tsv (path<TAB>text per line)")
    report = SkipReport(str(labels))
    samples, seen = [], set()
    for lineno, line in text_lines(labels, report):
        if "\t" not in line:
            report.add("lines without a TAB", f"line {lineno}")
            continue
        rel, text = line.split("\t", 1)
        if rel in seen:
            report.add("duplicate paths", f"line {lineno}: {rel}")
            continue
        seen.add(rel)
        samples.append(WordSample(rel, labels.parent / rel, text))
    samples = check_files(samples, report)
    report.warn()
    return samples, report


def check_files(samples: Iterable[WordSample], report: SkipReport) -> list[WordSample]:
    """Drop (and count) samples whose image is missing or empty; cheap checks only."""
    kept = []
    for s in samples:
        if not s.path.is_file():
            report.add("missing images", s.id)
        elif s.path.stat().st_size == 0:
            report.add("empty (0-byte) images", s.id)
        else:
            kept.append(s)
    return kept


# Common typographic characters mapped into IAM's ASCII charset when unknown_chars == "map".
_CHAR_MAP = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " "}


def map_to_charset(text: str, charset: Charset) -> str:
    """Best effort: typographic quotes/dashes to ASCII, accents stripped (é -> e)."""
    text = "".join(_CHAR_MAP.get(c, c) for c in text)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def filter_labels(
    samples: Iterable[WordSample],
    charset: Charset,
    source: str,
    unknown_chars: str = "skip",
    max_frames: int = 32,
) -> tuple[list[WordSample], SkipReport]:
    """Keep samples whose label the model can learn: non-empty, in the charset, short enough for CTC."""
    if unknown_chars not in ("skip", "map"):
        raise ConfigError("data.unknown_chars", f"unknown {unknown_chars!r}; use 'skip' or 'map'")
    report = SkipReport(source)
    kept = []
    for s in samples:
        text = s.text
        if unknown_chars == "map" and charset.unknown(text):
            text = map_to_charset(text, charset)
        if not text.strip():
            report.add("empty labels", s.id)
        elif any(c in text for c in "\t\r\n"):
            report.add("labels with tabs/newlines", s.id)
        elif charset.unknown(text):
            report.add(f"labels with characters outside the charset ({charset.unknown(text)!r}...)", s.id)
        elif ctc_min_frames(text) > max_frames:
            report.add(f"labels too long for {max_frames} CTC frames", s.id)
        else:
            kept.append(s if text == s.text else WordSample(s.id, s.path, text))
    # Merge per-reason lists whose reason strings differ only by the example characters.
    merged = SkipReport(source)
    for reason, ids in report.reasons.items():
        key = reason.split(" (")[0] if reason.startswith("labels with characters") else reason
        merged.reasons[key].extend(ids)
    merged.warn()
    return kept, merged


def check_split_fractions(fractions: Sequence[float]) -> None:
    """Raise :class:`ConfigError` unless ``fractions`` are three non-negative numbers summing to 1."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ConfigError("data.split_fractions", f"must be three non-negative numbers summing to 1, got {list(fractions)}")


def split_by_form(samples: list[WordSample], fractions: tuple[float, float, float], seed: int) -> dict[str, list[WordSample]]:
    """Seeded random train/val/test split of IAM samples by form id: no form in two splits."""
    check_split_fractions(fractions)
    forms = sorted({form_id(s.id) for s in samples})
    random.Random(seed).shuffle(forms)
    n_train = round(fractions[0] * len(forms))
    n_val = round(fractions[1] * len(forms))
    assign = {f: "train" for f in forms[:n_train]}
    assign.update({f: "val" for f in forms[n_train : n_train + n_val]})
    assign.update({f: "test" for f in forms[n_train + n_val :]})
    out: dict[str, list[WordSample]] = {"train": [], "val": [], "test": []}
    for s in samples:
        out[assign[form_id(s.id)]].append(s)
    return out


def split_by_lists(samples: list[WordSample], split_files: dict[str, str]) -> dict[str, list[WordSample]]:
    """Explicit split lists (one id per line): word, line or form ids, e.g. IAM's trainset.txt."""
    out: dict[str, list[WordSample]] = {}
    for split, list_path in split_files.items():
        path = Path(list_path)
        if not path.is_file():
            raise DatasetError(f"{path}: split list for '{split}' not found (data.split_files.{split})")
        ids = {line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip() and not line.startswith("#")}
        out[split] = [s for s in samples if s.id in ids or line_id(s.id) in ids or form_id(s.id) in ids]
        if not out[split]:
            raise DatasetError(f"{path}: no sample matches any id of the '{split}' list; check the ids (word, line or form ids)")
    return out


def split_random(samples: list[WordSample], fractions: tuple[float, float, float], seed: int) -> dict[str, list[WordSample]]:
    """Seeded random split by sample, for folder datasets without split folders."""
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(order))
    n_val = round(fractions[1] * len(order))
    pick = lambda idx: [samples[i] for i in sorted(idx)]  # noqa: E731
    return {"train": pick(order[:n_train]), "val": pick(order[n_train : n_train + n_val]), "test": pick(order[n_train + n_val :])}
