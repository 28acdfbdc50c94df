"""Diagnostics on models whose answer is known, and fast == naive on the real CRNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conftest import render_word
from htr.data.preprocess import BACKGROUND, to_canvas
from htr.diagnostics import (
    CRNNScorer,
    CTCScorer,
    DiagnosticsSettings,
    IncrementalCNN,
    ProbeSet,
    ShortcutScores,
    deletion_curve,
    edit,
    off_ink_share,
    parse_edit,
    periodic_amplitude,
    periodicity,
    plot_deletion,
    plot_edits,
    plot_relevance,
    plot_shift,
    relevance,
    shift_sweep,
    supports_incremental,
)
from htr.diagnostics.edits import EditSpecError
from htr.diagnostics.relevance import histogram_weights, make_perturbations, perturbation_log_scores
from htr.diagnostics.shift import max_shift_for
from htr.model.crnn import CRNN
from htr.text import Charset

CHARSET = Charset("aer")


class OnePixel(nn.Module):
    """p('a') depends on pixel (y, x) only: frame 0 says 'a' with logit w * (pixel - 0.5)."""

    def __init__(self, y: int, x: int, w: float = 4.0) -> None:
        super().__init__()
        self.y, self.x = y, x
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b = images.shape[0]
        logits = torch.zeros(b, 32, CHARSET.num_classes)
        logits[:, :, 0] = 6.0  # blank everywhere else
        logits[:, 0, 0] = 0.0
        logits[:, 0, 1] = self.w * (images[:, 0, self.y, self.x] - 0.5)
        return logits.log_softmax(-1)


class GlobalInk(nn.Module):
    """Translation invariant: every frame sees only the mean ink of the whole image."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        ink = (1 - images).mean(dim=(1, 2, 3))
        logits = torch.zeros(images.shape[0], 32, CHARSET.num_classes)
        logits[:, :, 0] = 2.0
        logits[:, :, 1] = 20 * ink[:, None]
        return logits.log_softmax(-1)


def ctc(model: nn.Module) -> CTCScorer:
    """A toy model in the project's layout, through the generic CTC scorer."""
    return CTCScorer(model, CHARSET)


def random_crnn(pooling: str, seed: int = 0) -> CRNN:
    """Random CRNN in eval mode with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = CRNN(CHARSET.num_classes, pooling=pooling)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.01, 0.05)  # small: amplifies, so pixels matter
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def canvas() -> np.ndarray:
    return to_canvas(render_word("are"))


def test_one_pixel_model_relevance_only_there_and_sign_flips(canvas: np.ndarray) -> None:
    y, x = 16, 10
    model = OnePixel(y, x)
    rel = relevance(ctc(model), canvas, "a", window=1, method="fast")  # no incremental engine: the naive path
    assert rel.shape == canvas.shape
    mask = np.zeros_like(rel, dtype=bool)
    mask[y, x] = True
    assert np.all(rel[~mask] == 0)
    assert abs(rel[y, x]) > 0.1
    with torch.no_grad():
        model.w.neg_()
    flipped = relevance(ctc(model), canvas, "a", window=1, weights="histogram")
    assert np.all(flipped[~mask] == 0)
    assert np.sign(flipped[y, x]) == -np.sign(rel[y, x])


def test_one_relevance_window_default_and_the_stride_follows_it(canvas: np.ndarray) -> None:
    import inspect

    from htr.diagnostics.__main__ import _parser
    from htr.explore.session import Explorer

    defaults = {
        "relevance()": inspect.signature(relevance).parameters["window"].default,
        "DiagnosticsSettings": DiagnosticsSettings().relevance_window,
        "htr.diagnostics relevance": _parser().parse_args(["relevance", "m.ckpt", "w.png", "--text", "a"]).window,
        "explorer": inspect.signature(Explorer.relevance).parameters["window"].default,
    }
    assert len(set(defaults.values())) == 1, defaults
    model = OnePixel(5, 7)
    window = defaults["relevance()"] + 1
    side_by_side = relevance(ctc(model), canvas, "a", window=window)
    assert np.array_equal(side_by_side, relevance(ctc(model), canvas, "a", window=window, stride=window))
    assert (side_by_side != 0).sum() == window * window  # the one window that holds (5, 7)


def test_one_pixel_windows_average_over_covering_windows(canvas: np.ndarray) -> None:
    model = OnePixel(5, 7)
    rel = relevance(ctc(model), canvas, "a", window=3, stride=1)
    nonzero = np.argwhere(rel != 0)
    assert nonzero[:, 0].min() >= 3 and nonzero[:, 0].max() <= 7  # windows covering (5, 7)
    assert nonzero[:, 1].min() >= 5 and nonzero[:, 1].max() <= 9


def test_histogram_weights_match_seed_bins() -> None:
    img = np.array([[0, 10, 60, 200, 255, 255]], dtype=np.uint8)
    w = histogram_weights(img, (0, 63, 127, 191, 255))
    np.testing.assert_allclose(w, [2 / 6, 1 / 6, 0, 1 / 6, 2 / 6])


def test_conditional_sampling_on_flat_paper_is_zero(canvas: np.ndarray) -> None:
    model = OnePixel(2, 120)  # a background pixel: its ring is all paper, no change possible
    rel = relevance(ctc(model), canvas, "a", window=1, sampling="conditional", n_samples=4)
    assert np.all(rel == 0)


@pytest.mark.parametrize("pooling", ["max", "blur"])
def test_incremental_features_equal_full_cnn_at_every_column(pooling: str, canvas: np.ndarray) -> None:
    model = random_crnn(pooling)
    assert supports_incremental(model)
    g = torch.Generator().manual_seed(1)
    x = torch.as_tensor(canvas, dtype=torch.float32)[None, None] / 255
    with torch.inference_mode():
        inc = IncrementalCNN(model.cnn, x)
        for a in [0, 1, 2, 3, 5, 42, 63, 64, 66, 123, 124, 125, 127]:
            for width in (1, 3):
                b = min(128, a + width)
                strips = torch.rand(2, 1, 32, b - a, generator=g)
                full = x.repeat(2, 1, 1, 1)
                full[..., a:b] = strips
                ref = model.cnn(full)
                # float summation order differs (narrow convs): compare relative to the scale
                assert (inc.assemble(*inc.strip(strips, a, b)) - ref).abs().max() <= 1e-5 * ref.abs().max()


@pytest.mark.parametrize("pooling", ["max", pytest.param("blur", marks=pytest.mark.slow)])  # blur: incremental test above
@pytest.mark.parametrize(
    ("width", "window", "stride", "sampling"),
    [(16, 1, 1, "marginal"), (40, 4, 3, "marginal"), (40, 3, 3, "conditional")],
)
def test_fast_equals_naive_on_real_crnn(pooling: str, width: int, window: int, stride: int, sampling: str, canvas: np.ndarray) -> None:
    """Narrow canvases keep the naive reference cheap (the CRNN takes any width); stride 3 puts
    windows at every offset modulo the pooling factor 4."""
    model = CRNNScorer(random_crnn(pooling), CHARSET)
    img = np.ascontiguousarray(canvas[:, :width])
    levels = (0, 255) if window == 1 else (0, 127, 255)
    kw = dict(window=window, stride=stride, sampling=sampling, gray_levels=levels, n_samples=2, eps=1e-300)
    fast = relevance(model, img, "are", method="fast", **kw)
    naive = relevance(model, img, "are", method="naive", **kw)
    assert np.abs(naive).max() > 1e-3  # a real map, not all zeros
    np.testing.assert_allclose(fast, naive, atol=1e-4, rtol=0)


def test_fast_equals_naive_log_scores_full_width(canvas: np.ndarray) -> None:
    scorer = CRNNScorer(random_crnn("max"), CHARSET)
    pert = make_perturbations(canvas, window=8, stride=8, gray_levels=(0, 255))
    c_fast, fast = perturbation_log_scores(scorer, canvas, "are", pert, "fast")
    c_naive, naive = perturbation_log_scores(scorer, canvas, "are", pert, "naive")
    assert c_fast == pytest.approx(c_naive, abs=1e-5)
    np.testing.assert_allclose(fast, naive, atol=1e-4 * max(1.0, abs(c_naive)), rtol=0)


def test_shift_sweep_of_translation_invariant_model_is_flat(canvas: np.ndarray) -> None:
    sweep = shift_sweep(ctc(GlobalInk()), canvas, "a", max_shift=16)
    assert list(sweep.shifts) == list(range(min(16, max_shift_for(canvas)) + 1))
    np.testing.assert_allclose(sweep.log_scores, sweep.log_scores[0], atol=1e-5)
    assert len(sweep.texts) == len(sweep.shifts)


def test_shift_sweep_never_pushes_ink_off_the_canvas() -> None:
    canvas = np.full((32, 128), BACKGROUND, dtype=np.uint8)
    canvas[10:20, 0:120] = 0  # ink up to column 119: room for 8 px
    sweep = shift_sweep(ctc(GlobalInk()), canvas, "a", max_shift=16)
    assert sweep.shifts[-1] == 8


def test_periodicity() -> None:
    t = np.arange(17)
    assert periodicity(np.sin(2 * np.pi * t / 4) + 0.3 * t, 4) == pytest.approx(1.0, abs=1e-9)
    assert periodicity(np.array([0, 0, 0, 1.0] * 4 + [0]), 4) == pytest.approx(0.5, abs=1e-9)  # + period 2
    assert periodicity(np.array([0, 0, 0, 1.0] * 4 + [0]), 4, harmonics=True) == pytest.approx(1.0, abs=1e-9)
    assert periodicity(np.sin(2 * np.pi * t / 8), 4) < 0.2
    assert np.isnan(periodicity(0.5 * t, 4))  # a straight line has no periodic part
    assert np.isnan(periodicity(np.ones(5), 4))  # too short


def test_periodic_amplitude_is_the_size_the_share_leaves_out() -> None:
    t = np.arange(17)
    # Any phase, on top of a trend: the swing's amplitude in the curve's units.
    assert periodic_amplitude(0.7 * np.sin(2 * np.pi * t / 4 + 0.4) + 0.3 * t - 2, 4) == pytest.approx(0.7, abs=1e-9)
    tiny, big = 0.001 * np.sin(2 * np.pi * t / 4), 0.5 * np.sin(2 * np.pi * t / 4)
    assert periodicity(tiny, 4) == pytest.approx(periodicity(big, 4))  # same share...
    assert periodic_amplitude(big, 4) == pytest.approx(500 * periodic_amplitude(tiny, 4))  # ...not the same size
    assert periodic_amplitude(0.5 * t, 4) == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(periodic_amplitude(np.ones(5), 4))


def test_edit_specs_and_results(canvas: np.ndarray) -> None:
    e = parse_edit("2,3,5,7=0")
    edited = e.apply(canvas)
    assert (edited[3:7, 2:5] == 0).all() and edited[7, 2] == canvas[7, 2] and edited[3, 5] == canvas[3, 5]
    assert parse_edit("dot:10,10,2=0").apply(np.full((32, 128), 255, np.uint8))[10, 10] == 0
    assert parse_edit("line:0,0,20,0,1=0;px:50,5=7").apply(np.full((32, 128), 255, np.uint8))[5, 50] == 7
    for bad in ("1,2,3=0", "1,2,3,4=300", "dot:1,2=0", "blob:1,2=0", "5,5,2,2=0", "1,2,3,4"):
        with pytest.raises(EditSpecError):
            parse_edit(bad)
    results = edit(ctc(OnePixel(16, 10)), canvas, "a", ["10,16,11,17=0", "10,16,11,17=255"])
    assert [r.label for r in results] == ["original", "10,16,11,17=0", "10,16,11,17=255"]
    assert results[2].score > results[1].score  # OnePixel rewards a white pixel
    assert all(isinstance(r.recognized, str) for r in results)


def test_deletion_curve(canvas: np.ndarray) -> None:
    model = ctc(OnePixel(16, 10))
    rel = np.zeros(canvas.shape)
    rel[16, 10] = 1.0  # the only pixel that matters comes first
    fractions, scores, aopc = deletion_curve(model, canvas, "a", rel, steps=4, max_fraction=0.01, replacement=0, fine_start=False)
    assert fractions[0] == 0 and len(scores) == 5
    assert np.all(scores[1:] == scores[1])  # after step 1 nothing else matters
    assert aopc == pytest.approx(np.mean(scores[0] - scores))
    # Fine steps (1, 2, 4, 8 px before the first even step of 10 px) show where the score falls
    # (at the very first pixel here) without changing AOPC.
    fine_fr, fine_scores, fine_aopc = deletion_curve(model, canvas, "a", rel, steps=4, max_fraction=0.01, replacement=0)
    assert list(np.round(fine_fr * canvas.size).astype(int)) == [0, 1, 2, 4, 8, 10, 20, 31, 41]
    assert fine_scores[1] == scores[1] != scores[0] and fine_aopc == pytest.approx(aopc)


def test_off_ink_share() -> None:
    canvas = np.full((32, 128), BACKGROUND, dtype=np.uint8)
    canvas[10:20, 10:20] = 0
    rel = np.zeros(canvas.shape)
    rel[15, 15] = 1.0  # on ink
    rel[2, 100] = 3.0  # far away
    rel[5, 5] = -10.0  # negative: ignored
    assert off_ink_share(canvas, rel, distance=2) == pytest.approx(0.75)


def test_shortcut_scores_typed_and_flat(canvas: np.ndarray) -> None:
    settings = DiagnosticsSettings(max_shift=9, relevance_probes=1, relevance_window=8)
    diag = settings.diagnose(ctc(GlobalInk()), ProbeSet(["0", "1"], ["a", "a"], np.stack([canvas, canvas])))
    scores = diag.scores
    assert list(scores.shifts) == list(range(10)) and scores.log_score_drop == pytest.approx(0.0, abs=1e-5)  # translation invariant
    assert scores.off_ink_evidence is not None and scores.aopc == pytest.approx(diag.deletions[0][2])
    assert scores.specks.increase == scores.specks.specks - scores.specks.clean
    out = diag.to_flat()
    assert all(isinstance(v, float) for v in out.values())
    assert list(out)[:4] == ["acc@shift0", "logscore@shift0", "acc@shift1", "logscore@shift1"]
    assert list(out)[20:] == ["acc_drop@8plus", "logscore_drop@8plus", "periodicity@4", "periodic_amplitude@4", "cer@clean", "cer@specks", "cer_increase@specks", "off_ink_evidence", "aopc"]
    assert out["logscore_drop@8plus"] == scores.log_score_drop and out["acc@shift9"] == scores.accuracy_at(9)
    # A stored run's flat scores read back into the same fields; the threshold and period come from the settings.
    assert ShortcutScores.from_flat(out, 8, 4) == scores
    assert DiagnosticsSettings(shift_threshold=6, period=3).diagnose(ctc(GlobalInk()), ProbeSet(["0"], ["a"], canvas[None])).to_flat().keys() >= {"acc_drop@6plus", "periodicity@3"}


def test_plots_render_png(tmp_path, canvas: np.ndarray) -> None:
    model = ctc(OnePixel(16, 10))
    rel = np.random.default_rng(0).normal(0, 0.1, canvas.shape)
    figs = {
        "relevance": plot_relevance(canvas, rel, "are"),
        "relevance_auto": plot_relevance(canvas, rel, vmax="auto"),
        "edits": plot_edits(edit(model, canvas, "a", ["dot:10,16,1=0"]), "a"),
        "shift": plot_shift(shift_sweep(model, canvas, "a", 6), "a"),
        "deletion": plot_deletion(*deletion_curve(model, canvas, "a", rel, steps=3)),
    }
    for name, fig in figs.items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
