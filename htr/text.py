"""Charset, label encoding, CTC decoding and the CTC text score.

Index 0 is the CTC blank; character ``charset[i]`` has class index ``i + 1``.
Log-probabilities are laid out (batch, time, classes) throughout the project.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from htr.errors import HTRError

# The 79 characters of the IAM word transcriptions (SimpleHTR's charList).
IAM_CHARSET = " !\"#&'()*+,-./0123456789:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BLANK = 0


class CharsetError(HTRError, ValueError):
    """A charset that cannot be used, or a text with characters outside the model's charset."""


class Charset:
    """An ordered set of characters; class 0 is the CTC blank."""

    def __init__(self, chars: str = IAM_CHARSET) -> None:
        if len(set(chars)) != len(chars):
            raise CharsetError(f"charset has duplicate characters: {chars!r}")
        if not chars:
            raise CharsetError("charset is empty")
        self.chars = chars
        self._index = {c: i + 1 for i, c in enumerate(chars)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Charset:
        """The sorted set of characters that occur in ``texts``."""
        return cls("".join(sorted(set("".join(texts)))))

    @property
    def num_classes(self) -> int:
        """Characters plus the blank."""
        return len(self.chars) + 1

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and other.chars == self.chars

    def __repr__(self) -> str:
        return f"Charset({self.chars!r})"

    def unknown(self, text: str) -> str:
        """Characters of ``text`` outside the charset (sorted, unique)."""
        return "".join(sorted({c for c in text if c not in self._index}))

    def encode(self, text: str) -> list[int]:
        try:
            return [self._index[c] for c in text]
        except KeyError as err:
            raise CharsetError(f"character {err.args[0]!r} of {text!r} is not in the charset") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Class ids (no blanks expected; blanks are dropped) to text."""
        return "".join(self.chars[i - 1] for i in ids if i != BLANK)


def ctc_min_frames(text: str) -> int:
    """Frames CTC needs for ``text``: one per character plus a blank between equal neighbours."""
    return len(text) + sum(1 for a, b in zip(text, text[1:]) if a == b)


def best_path_ids(log_probs: torch.Tensor) -> list[list[int]]:
    """Greedy CTC decoding of (B, T, C) log-probs: argmax per frame, merge repeats, drop blanks."""
    best = log_probs.argmax(dim=-1).cpu().numpy()
    out = []
    for row in best:
        keep = np.ones_like(row, dtype=bool)
        keep[1:] = row[1:] != row[:-1]
        out.append([int(c) for c in row[keep] if c != BLANK])
    return out


def best_path_decode(log_probs: torch.Tensor, charset: Charset) -> list[str]:
    return [charset.decode(ids) for ids in best_path_ids(log_probs)]


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_search_decode(log_probs: torch.Tensor, charset: Charset, beam_width: int = 10) -> list[str]:
    """CTC prefix beam search (no language model) over (B, T, C) log-probs."""
    lp = log_probs.detach().float().cpu().numpy()
    return [charset.decode(_prefix_beam_search(seq, beam_width)) for seq in lp]


def _prefix_beam_search(lp: np.ndarray, beam_width: int) -> tuple[int, ...]:
    # Each prefix keeps (log p ending in blank, log p ending in its last char).
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    num_classes = lp.shape[1]
    for t in range(lp.shape[0]):
        frame = lp[t]
        # Only expand characters that could matter at this frame.
        candidates = np.argsort(frame)[::-1][: max(beam_width, 1) + 1]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (p_b, p_nb) in beams.items():
            total = _logsumexp(p_b, p_nb)
            entry = nxt[prefix]
            entry[0] = _logsumexp(entry[0], total + float(frame[BLANK]))
            if prefix:
                entry[1] = _logsumexp(entry[1], p_nb + float(frame[prefix[-1]]))
            for c in candidates:
                c = int(c)
                if c == BLANK or c >= num_classes:
                    continue
                ext = prefix + (c,)
                e = nxt[ext]
                # A repeated char needs a blank in between.
                src = p_b if prefix and prefix[-1] == c else total
                e[1] = _logsumexp(e[1], src + float(frame[c]))
        ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:beam_width]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    return max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))[0]


def decode(log_probs: torch.Tensor, charset: Charset, method: str = "best_path", beam_width: int = 10) -> list[str]:
    """Decode (B, T, C) log-probs with ``best_path`` or ``beam`` search."""
    if method == "best_path":
        return best_path_decode(log_probs, charset)
    if method == "beam":
        return beam_search_decode(log_probs, charset, beam_width)
    raise ValueError(f"unknown decoder {method!r}: use 'best_path' or 'beam'")


def encode_batch(texts: Sequence[str], charset: Charset) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated targets and their lengths, as ``F.ctc_loss`` takes them."""
    ids = [charset.encode(t) for t in texts]
    targets = torch.tensor([i for row in ids for i in row], dtype=torch.long)
    lengths = torch.tensor([len(row) for row in ids], dtype=torch.long)
    return targets, lengths


def ctc_nll(log_probs: torch.Tensor, texts: Sequence[str], charset: Charset, reduction: str = "none", zero_infinity: bool = False) -> torch.Tensor:
    """CTC negative log-likelihood of one text per row of (B, T, C) log-probs, every row using all T
    frames: ``F.ctc_loss`` as the loss (``reduction="mean"``, ``zero_infinity=True``) and the text
    score (``"none"``, infeasible texts at inf) both take it."""
    targets, target_lengths = encode_batch(texts, charset)
    input_lengths = torch.full((log_probs.shape[0],), log_probs.shape[1], dtype=torch.long)
    return F.ctc_loss(
        log_probs.transpose(0, 1),
        targets.to(log_probs.device),
        input_lengths,
        target_lengths,
        blank=BLANK,
        reduction=reduction,
        zero_infinity=zero_infinity,
    )


def text_log_score(log_probs: torch.Tensor, texts: Sequence[str], charset: Charset) -> torch.Tensor:
    """log p(text | image) = -CTC loss for each row of (B, T, C) log-probs; -inf where infeasible.

    ``texts`` may hold one text for the whole batch (broadcast) or one per row. Scored in float32
    whatever the model's dtype (a bf16 model's scores are not rounded to bf16).
    """
    batch = log_probs.shape[0]
    if len(texts) == 1 and batch > 1:
        texts = list(texts) * batch
    if len(texts) != batch:
        raise ValueError(f"{len(texts)} texts for a batch of {batch}")
    return -ctc_nll(log_probs.float(), texts, charset)


def char_edits(truth: str, reading: str) -> list[tuple[str, str]]:
    """The character errors of ``reading`` against ``truth`` along one minimal (Levenshtein)
    alignment, in reading order: ``(true, read)`` for a substitution, ``(true, "")`` for a
    character left out, ``("", read)`` for one added. Their count is the edit distance, i.e. the
    numerator of the CER; among equally short alignments substitutions are preferred."""
    n, m = len(truth), len(reading)
    cost = np.zeros((n + 1, m + 1), np.int32)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j - 1] + (truth[i - 1] != reading[j - 1]), cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    edits: list[tuple[str, str]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (truth[i - 1] != reading[j - 1]):
            if truth[i - 1] != reading[j - 1]:
                edits.append((truth[i - 1], reading[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            edits.append((truth[i - 1], ""))
            i -= 1
        else:
            edits.append(("", reading[j - 1]))
            j -= 1
    return edits[::-1]


def error_counts(texts: Sequence[str], readings: Sequence[str]) -> Counter[tuple[str, str]]:
    """How often each character error (:func:`char_edits`) occurs over a set of words."""
    if len(texts) != len(readings):
        raise ValueError(f"{len(texts)} texts but {len(readings)} readings")
    return Counter(edit for truth, reading in zip(texts, readings) for edit in char_edits(truth, reading))
