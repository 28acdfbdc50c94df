"""Charset, decoding and the CTC text score, checked against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from htr.text import (
    IAM_CHARSET,
    Charset,
    beam_search_decode,
    best_path_decode,
    ctc_min_frames,
    text_log_score,
)


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    prev = None
    for c in path:
        if c != prev and c != 0:
            out.append(c)
        prev = c
    return tuple(out)


def brute_force_scores(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """p(labelling) by summing the probability of every alignment path of a (T, C) matrix."""
    frames, classes = log_probs.shape
    probs = log_probs.exp()
    scores: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(classes), repeat=frames):
        p = math.prod(float(probs[t, c]) for t, c in enumerate(path))
        key = collapse(path)
        scores[key] = scores.get(key, 0.0) + p
    return scores


def test_iam_charset_has_79_characters() -> None:
    assert len(IAM_CHARSET) == 79
    assert Charset().num_classes == 80


def test_encode_decode_roundtrip_and_unknown() -> None:
    cs = Charset("abc ")
    assert cs.decode(cs.encode("ab ca")) == "ab ca"
    assert cs.unknown("abxd") == "dx"
    with pytest.raises(ValueError, match="'x'"):
        cs.encode("ax")
    assert Charset.from_texts(["ba", "ca"]).chars == "abc"


def test_ctc_min_frames_counts_blanks_between_repeats() -> None:
    assert ctc_min_frames("abc") == 3
    assert ctc_min_frames("aab") == 4
    assert ctc_min_frames("oooo") == 7


@pytest.mark.parametrize("frames,chars", [(3, "ab"), (4, "ab"), (5, "a")])
def test_text_score_matches_brute_force(frames: int, chars: str) -> None:
    cs = Charset(chars)
    torch.manual_seed(frames)
    log_probs = torch.randn(frames, cs.num_classes).log_softmax(-1)
    truth = brute_force_scores(log_probs)
    assert math.isclose(sum(truth.values()), 1.0, rel_tol=1e-5)
    labellings = [lab for lab in truth if lab]
    texts = [cs.decode(lab) for lab in labellings]
    got = text_log_score(log_probs.unsqueeze(0).expand(len(texts), -1, -1), texts, cs).exp()  # p(text | image)
    for text, lab, p in zip(texts, labellings, got.tolist()):
        assert p == pytest.approx(truth[lab], rel=1e-4, abs=1e-7), text


def test_text_score_is_zero_when_infeasible_and_broadcasts() -> None:
    cs = Charset("ab")
    log_probs = torch.randn(2, 3, cs.num_classes).log_softmax(-1)
    # "aaa" needs 5 frames, only 3 exist.
    assert text_log_score(log_probs, ["aaa"], cs).tolist() == [-math.inf, -math.inf]
    one = text_log_score(log_probs, ["ab"], cs)
    two = text_log_score(log_probs, ["ab", "ab"], cs)
    assert torch.allclose(one, two)


def test_best_path_merges_repeats_and_drops_blanks() -> None:
    cs = Charset("ab")
    path = [1, 1, 0, 1, 2, 2, 0]  # a a - a b b -  -> "aab"
    log_probs = torch.full((1, len(path), cs.num_classes), -10.0)
    for t, c in enumerate(path):
        log_probs[0, t, c] = 0.0
    assert best_path_decode(log_probs.log_softmax(-1), cs) == ["aab"]


def test_beam_search_finds_the_most_probable_labelling() -> None:
    cs = Charset("ab")
    for seed in range(5):
        torch.manual_seed(seed)
        log_probs = (torch.randn(4, cs.num_classes) * 2).log_softmax(-1)
        truth = brute_force_scores(log_probs)
        best = max(truth, key=truth.get)
        assert beam_search_decode(log_probs.unsqueeze(0), cs, beam_width=25) == [cs.decode(best)]


def test_beam_search_can_beat_best_path() -> None:
    # Classic case: best path says "" (blank wins every frame) but "a" is more probable overall.
    cs = Charset("a")
    probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]])
    log_probs = probs.log().unsqueeze(0)
    assert best_path_decode(log_probs, cs) == [""]
    assert beam_search_decode(log_probs, cs, beam_width=4) == ["a"]
