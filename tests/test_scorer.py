"""The scorer seam: recognizers laid out unlike ours give, through their scorers, the scores of a
hand-computed reference; the whole suite runs on them; a wrong setting is refused in one line."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from conftest import render_word
from htr.data.preprocess import to_canvas
from htr.diagnostics import CRNNScorer, CTCScorer, DiagnosticsSettings, ProbeSet, ScorerError, Seq2SeqScorer, relevance, shift_sweep
from htr.model.crnn import CRNN
from htr.text import Charset

pytestmark = pytest.mark.usefixtures("one_thread")

CHARS = "aer"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
FRAMES = 6  # few frames: the reference sums over every one of the 4**6 alignments


def mean_std(x: torch.Tensor) -> torch.Tensor:
    return (x - MEAN) / STD


class RGBFramesCTC(nn.Module):
    """(B, 3, 32, 128) mean/std-normalised -> (T, B, C) logits, blank = the last class; the
    channels get different weights, so a wrong channel count or normalisation changes the scores."""

    def __init__(self, log_softmax: bool = True, layout: str = "TBC") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 5, padding=2)
        self.pool = nn.AdaptiveAvgPool2d((1, FRAMES))
        self.out = nn.Linear(8, len(CHARS) + 1)
        self.log_softmax, self.layout = log_softmax, layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3:
            raise RuntimeError(f"expected 3 input channels, got {x.shape[1]}")
        f = self.pool(torch.tanh(self.conv(x))).squeeze(2).permute(2, 0, 1)  # (T, B, 8)
        y = 3 * self.out(f)
        y = y.log_softmax(-1) if self.log_softmax else y
        return y if self.layout == "TBC" else y.transpose(0, 1)


def reference_ctc(log_probs: np.ndarray, text: str, blank: int) -> float:
    """log p(text) = log sum over all T-frame paths that collapse to ``text`` of prod_t p(path_t),
    with character ``CHARS[i]`` at the i-th non-blank class (brute force)."""
    classes = [i for i in range(log_probs.shape[1]) if i != blank]
    total = 0.0
    for path in itertools.product(range(log_probs.shape[1]), repeat=log_probs.shape[0]):
        collapsed = [c for k, c in enumerate(path) if c != blank and (k == 0 or c != path[k - 1])]
        if "".join(CHARS[classes.index(c)] for c in collapsed) == text:
            total += math.exp(sum(log_probs[t, c] for t, c in enumerate(path)))
    return math.log(total) if total > 0 else -math.inf


def model_input(canvases: np.ndarray) -> torch.Tensor:
    """What the model expects, made here by hand: gray / 255 copied to RGB, then mean/std."""
    x = torch.as_tensor(canvases, dtype=torch.float32)[:, None] / 255
    return mean_std(x.repeat(1, 3, 1, 1))


@pytest.fixture(scope="module")
def canvases() -> np.ndarray:
    return np.stack([to_canvas(render_word(w, seed=i)) for i, w in enumerate(["are", "ear", "era"])])


def test_tbc_blank_last_rgb_ctc_model_scores_like_the_brute_force_reference(canvases: np.ndarray) -> None:
    model = RGBFramesCTC().eval()
    scorer = CTCScorer(model, CHARS, blank=-1, layout="TBC", channels=3, normalize=mean_std)
    texts = ["a", "ea", "rr"]  # "rr" needs a blank between the two r's
    scored = scorer.score(canvases, texts, frames=True)
    with torch.no_grad():
        raw = model(model_input(canvases)).transpose(0, 1).double().numpy()  # (B, T, C), blank last
    for b, text in enumerate(texts):
        assert scored.log_scores[b] == pytest.approx(reference_ctc(raw[b], text, blank=len(CHARS)), abs=1e-5)
        # The reading: best path by hand (argmax per frame, merge repeats, drop the blank).
        best = raw[b].argmax(-1)
        by_hand = "".join(CHARS[c] for k, c in enumerate(best) if c != len(CHARS) and (k == 0 or c != best[k - 1]))
        assert scored.readings[b] == by_hand
    # Frames come back in the project's layout: blank first, then the characters in charset order.
    np.testing.assert_allclose(scored.log_probs.numpy(), np.concatenate([raw[..., -1:], raw[..., :-1]], -1), atol=1e-6)


def test_logits_are_normalised_by_the_scorer(canvases: np.ndarray) -> None:
    with torch.no_grad():
        expected = CTCScorer(RGBFramesCTC(), CHARS, blank=-1, layout="TBC", channels=3, normalize=mean_std).score(canvases, "ar").log_scores
    logits = CTCScorer(RGBFramesCTC(log_softmax=False), CHARS, blank=-1, layout="TBC", outputs="logits", channels=3, normalize=mean_std)
    np.testing.assert_allclose(logits.score(canvases, "ar").log_scores, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("model", "settings", "says"),
    [
        (RGBFramesCTC(log_softmax=False), {"layout": "TBC", "channels": 3, "normalize": mean_std}, "set outputs='logits'"),
        (RGBFramesCTC(), {"layout": "BTC", "channels": 3, "normalize": mean_std}, "set layout='TBC'"),
        (RGBFramesCTC(layout="BTC"), {"layout": "TBC", "channels": 3, "normalize": mean_std}, "set layout='BTC'"),
        (RGBFramesCTC(), {"layout": "TBC"}, "set channels=3"),
    ],
)
def test_a_model_that_does_not_fit_is_refused_in_one_line(model: nn.Module, settings: dict, says: str, canvases: np.ndarray) -> None:
    scorer = CTCScorer(model, CHARS, blank=-1, **settings)
    with pytest.raises(ScorerError) as err:
        scorer.score(canvases, "are")
    message = str(err.value)
    assert says in message and "\n" not in message


def test_a_charset_of_the_wrong_size_is_refused(canvases: np.ndarray) -> None:
    with pytest.raises(ScorerError, match="pass the model's own characters"):
        CTCScorer(RGBFramesCTC(), "aerz", blank=-1, layout="TBC", channels=3).score(canvases, "are")


class TinySeq2Seq(nn.Module):
    """An attention-free encoder-decoder: the image's column means -> GRU state; the decoder reads
    [sos, tokens...] and scores the next token at each position (causal, so teacher forcing = stepping)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.encode = nn.Linear(128, 16)
        self.embed = nn.Embedding(vocab, 16)
        self.gru = nn.GRU(16, 16, batch_first=True)
        self.out = nn.Linear(16, vocab)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        h0 = torch.tanh(self.encode(images.mean(dim=(1, 2))))[None]  # (1, B, 16)
        seq, _ = self.gru(self.embed(tokens), h0)
        return 4 * self.out(seq)  # logits (B, L, V)


PAD, SOS, EOS = 0, 1, 2  # specials first; character i is token 3 + i


def test_seq2seq_scores_are_the_teacher_forced_sum_computed_step_by_step(canvases: np.ndarray) -> None:
    model = TinySeq2Seq(vocab=3 + len(CHARS)).eval()
    scorer = Seq2SeqScorer(model, CHARS, sos=SOS, eos=EOS, specials=(PAD,), max_length=8)
    texts = ["are", "e", "era"]
    scored = scorer.score(canvases, texts)
    x = torch.as_tensor(canvases, dtype=torch.float32)[:, None] / 255
    for b, text in enumerate(texts):
        # By hand: feed the prefix one token at a time and add log p(next true token), end token included.
        prefix, total = [SOS], 0.0
        with torch.no_grad():
            for target in [3 + CHARS.index(c) for c in text] + [EOS]:
                logits = model(x[b : b + 1], torch.tensor([prefix]))[0, -1].double()
                total += float(logits.log_softmax(-1)[target])
                prefix.append(target)
        assert scored.log_scores[b] == pytest.approx(total, abs=1e-6)
        # Greedy reading by hand.
        prefix, read = [SOS], ""
        with torch.no_grad():
            for _ in range(9):
                nxt = int(model(x[b : b + 1], torch.tensor([prefix]))[0, -1].argmax())
                if nxt in (PAD, SOS, EOS):
                    break
                read, prefix = read + CHARS[nxt - 3], prefix + [nxt]
        assert scored.readings[b] == read
    assert scored.log_probs is None  # no frames


def test_seq2seq_log_probs_that_do_not_normalise_are_refused(canvases: np.ndarray) -> None:
    scorer = Seq2SeqScorer(TinySeq2Seq(vocab=6), CHARS, sos=SOS, eos=EOS, specials=(PAD,), outputs="log_probs")
    with pytest.raises(ScorerError, match="set outputs='logits'"):
        scorer.score(canvases, "are")


@pytest.mark.parametrize(
    ("setting", "names"),
    [({"layout": "TCB"}, "layout must be 'BTC'"), ({"outputs": "probs"}, "outputs must be"), ({"channels": 2}, "channels must be 1")],
)
def test_a_scorer_built_with_a_bad_setting_is_refused_in_one_line(setting: dict, names: str) -> None:
    with pytest.raises(ScorerError, match=names) as err:
        CTCScorer(random_crnn(), CHARS, **setting)
    assert "\n" not in str(err.value)


def random_crnn(seed: int = 0) -> CRNN:
    torch.manual_seed(seed)
    model = CRNN(Charset(CHARS).num_classes)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.01, 0.05)
    return model.eval()


def test_fast_relevance_through_the_crnn_scorer_equals_the_naive_path_of_any_scorer(canvases: np.ndarray) -> None:
    """The incremental engine is the CRNN scorer's own; the same model behind the generic CTC scorer
    (no engine: batched naive path) and the CRNN scorer's naive path give the same map."""
    model = random_crnn()
    img = np.ascontiguousarray(canvases[0][:, :48])
    kw = dict(window=4, stride=3, gray_levels=(0, 127, 255), eps=1e-300)
    fast = relevance(CRNNScorer(model, CHARS), img, "are", method="fast", **kw)
    assert np.abs(fast).max() > 1e-3
    np.testing.assert_allclose(relevance(CTCScorer(model, CHARS), img, "are", method="fast", **kw), fast, atol=1e-4, rtol=0)
    np.testing.assert_allclose(relevance(CRNNScorer(model, CHARS), img, "are", method="naive", **kw), fast, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["ctc", "seq2seq"])
def test_the_whole_suite_runs_through_a_foreign_scorer(kind: str, canvases: np.ndarray) -> None:
    if kind == "ctc":
        scorer = CTCScorer(RGBFramesCTC(log_softmax=False), CHARS, blank=-1, layout="TBC", outputs="logits", channels=3, normalize=mean_std)
    else:
        scorer = Seq2SeqScorer(TinySeq2Seq(vocab=6), CHARS, sos=SOS, eos=EOS, specials=(PAD,), max_length=6)
    probes = ProbeSet(["0", "1"], ["are", "ear"], canvases[:2])
    diag = DiagnosticsSettings(max_shift=9, relevance_probes=1, relevance_window=16).diagnose(scorer, probes)
    flat = diag.to_flat()
    assert {"acc@shift9", "acc_drop@8plus", "periodicity@4", "cer_increase@specks", "off_ink_evidence", "aopc"} <= set(flat)
    assert diag.relevance_maps[0].shape == (32, 128)
    sweep = shift_sweep(scorer, canvases[0], "are", max_shift=3)
    np.testing.assert_allclose(sweep.log_scores[0], scorer.score(canvases[0], "are").log_scores[0])


def test_the_explorer_takes_any_scorer(tmp_path) -> None:
    import io

    from PIL import Image

    from htr.explore.session import Explorer

    ctc = CTCScorer(RGBFramesCTC(log_softmax=False), CHARS, blank=-1, layout="TBC", outputs="logits", channels=3, normalize=mean_std)
    s2s = Seq2SeqScorer(TinySeq2Seq(vocab=6), CHARS, sos=SOS, eos=EOS, specials=(PAD,), max_length=6)
    ex = Explorer([], scorers={"ctc": ctc, "seq2seq": s2s}, export_dir=tmp_path)
    try:
        buf = io.BytesIO()
        Image.fromarray(render_word("are")).save(buf, format="PNG")
        word = ex.upload(buf.getvalue(), "are.png").id
        ctc_col, s2s_col = ex.score(word, "are", ["100,4,124,28=0"], 2)["models"]
        _, shifted, ed = ex.render(word, ["100,4,124,28=0"], 2)
        assert ctc_col["edited"]["log_score"] == pytest.approx(float(ctc.score(ed.apply(shifted), "are").log_scores[0]))
        assert len(ctc_col["frames"]) == FRAMES and s2s_col["frames"] == [] and s2s_col["edited"]["reading"] == s2s.score(ed.apply(shifted), "are").readings[0]
        job = ex.relevance(word, "are", window=16)
        assert job.wait(60) and job.status()["error"] is None
        expected = relevance(ctc, ex.render(word, [], 0)[1], "are", window=16, stride=16)
        np.testing.assert_allclose(np.reshape(job.status()["maps"][0]["map"], (32, 128)), expected, atol=1e-4)
        assert ex.export(word, "are")["commands"] == []  # no checkpoint file: no edit command to print
    finally:
        ex.close()
