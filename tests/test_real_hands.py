"""Letter shapes beyond the fonts (re-stroking, joins, prose text), the binarising capture, the
translation settings, the real-handwriting sets and the worst-read strip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from htr.data.augment import Translation, WordTransform
from htr.data.datamodule import WordDataModule
from htr.data.preprocess import crop_to_canvas, fit_word, normalize_contrast
from htr.data.synthetic import SyntheticConfig, render_sample, split_writer
from htr.data.synthetic.strokes import centre_line_segments, draw_segments, restroke, thin
from htr.data.synthetic.text import attach_punctuation, label_ok, sample_text
from htr.data.synthetic.writer import NO_HAND, Hand, _ink_glyphs, binarize_scan
from htr.experiment.compare import error_rows
from htr.experiment.figures import word_cer, worst_read_strip
from htr.text import char_edits, error_counts

ROOT = Path(__file__).resolve().parent.parent


def ring_and_bar() -> np.ndarray:
    """A thick ring and a thick bar: shapes whose centre lines are known."""
    mask = np.zeros((80, 200), np.uint8)
    cv2.circle(mask, (40, 40), 25, 255, 9)
    cv2.line(mask, (100, 40), (180, 40), 255, 9)
    return mask


def distance_to(mask: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest True pixel of ``mask``."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)


def test_thin_gives_a_connected_one_pixel_centre_line():
    mask = ring_and_bar()
    skeleton = thin(mask > 0)
    # One pixel wide: no 2x2 block of skeleton pixels.
    s = skeleton.astype(np.uint8)
    assert (s[:-1, :-1] + s[1:, :-1] + s[:-1, 1:] + s[1:, 1:]).max() < 4
    # Connectivity kept: still two shapes, and the ring still has its hole.
    n, _ = cv2.connectedComponents(s, connectivity=8)
    assert n - 1 == 2
    assert not skeleton[40, 40] and not skeleton[25:56, 25:56][10:21, 10:21].any()
    # On the centre: the bar's line is its middle row, the ring's at its radius.
    assert skeleton[38:43, 110:170].any(axis=0).all() and not skeleton[:35, 100:].any()
    ys, xs = np.nonzero(skeleton[:, :80])
    radius = np.hypot(ys - 40, xs - 40)
    assert np.abs(radius - 25).max() <= 2.0


def test_restroke_without_jitter_draws_the_centre_line_with_the_pen():
    mask = ring_and_bar()
    skeleton = thin(mask > 0)
    pen = 3.0
    out = restroke(mask, pen, 0.0, 20.0, np.random.default_rng(0)) > 127
    # Every pixel of the new ink lies within the pen's radius of the old centre line ...
    assert distance_to(skeleton)[out].max() <= pen / 2 + 1.5
    # ... and the new stroke covers the whole centre line, at about the pen's width (not the font's 9 px).
    assert out[skeleton].all()
    assert out[40, 100:180].sum() == 80 and out[:, 140].sum() <= pen + 2


def test_restroke_jitter_is_seeded_and_stays_near_the_centre_line():
    mask = ring_and_bar()
    skeleton = thin(mask > 0)
    jitter = 2.0
    a = restroke(mask, 2.0, jitter, 20.0, np.random.default_rng(1))
    b = restroke(mask, 2.0, jitter, 20.0, np.random.default_rng(1))
    c = restroke(mask, 2.0, jitter, 20.0, np.random.default_rng(2))
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    straight = restroke(mask, 2.0, 0.0, 20.0, np.random.default_rng(1))
    assert a.tobytes() != straight.tobytes()  # the jitter moved the line
    # A smooth displacement of sd ``jitter``: the ink keeps within a few of its sd of the old line.
    assert distance_to(skeleton)[a > 127].max() <= 1.0 + 4 * jitter + 1.5


def test_centre_line_segments_keep_dots():
    skeleton = np.zeros((10, 10), bool)
    skeleton[2, 2] = True  # a lone dot (the dot of an i)
    skeleton[6, 3:8] = True  # a short line
    segments = centre_line_segments(skeleton)
    assert len(segments) == 4 + 1  # four links along the line, one zero-length segment for the dot
    drawn = draw_segments(skeleton.shape, segments, 1.0) > 0
    assert drawn[2, 2] and drawn[6, 3:8].all()


def print_writer(config: SyntheticConfig):
    """The first training writer whose font draws glyph by glyph (does not join letters)."""
    return next(w for w in (split_writer(config, "train", i) for i in range(200)) if not w.font.joined)


def test_joins_connect_the_letters_of_a_print_font():
    writer = print_writer(SyntheticConfig())
    plain = _ink_glyphs(writer, "minimum", np.random.default_rng(0), 60)
    joined = _ink_glyphs(writer, "minimum", np.random.default_rng(0), 60, Hand(connect=1.0), np.random.default_rng(5))
    again = _ink_glyphs(writer, "minimum", np.random.default_rng(0), 60, Hand(connect=1.0), np.random.default_rng(5))
    assert joined.tobytes() == again.tobytes()
    parts = [cv2.connectedComponents((im > 127).astype(np.uint8), connectivity=8)[0] - 1 for im in (plain, joined)]
    assert parts[1] < parts[0]  # letters that stood apart are now one stroke
    # The joins only add ink: every pixel of the print letters is still there.
    assert (joined >= plain).all() and (joined > plain).sum() > 0


# The generator before letter shapes (what the 18-run study and the first shipped pair read).
FONTS_ONLY = {"p_restroke": 0.0, "p_connect": 0.0}


def test_fonts_only_generator_is_unchanged_and_hands_are_seeded():
    base = SyntheticConfig(**FONTS_ONLY)
    off = SyntheticConfig(**FONTS_ONLY, restroke_jitter=0.08)  # no writer re-strokes or joins: nothing changes
    hands = SyntheticConfig(p_restroke=1.0, p_connect=1.0)
    for i in range(6):
        a, ta = render_sample(base, "train", i)
        b, tb = render_sample(off, "train", i)
        assert ta == tb and a.tobytes() == b.tobytes()
        c, tc = render_sample(hands, "train", i)
        d, td = render_sample(hands, "train", i)
        assert tc == ta and td == tc and c.tobytes() == d.tobytes()  # same word, same writer, seeded
        assert c.tobytes() != a.tobytes()  # ... in the re-stroked hand
    # Options that are off are not in the manifests: data generated before they existed stays valid.
    assert off.to_dict() == base.to_dict() and "p_restroke" in hands.to_dict() and "p_attached" not in hands.to_dict()
    other = SyntheticConfig(p_restroke=1.0, p_connect=1.0, seed=1)
    assert any(render_sample(other, "train", i)[0].tobytes() != render_sample(hands, "train", i)[0].tobytes() for i in range(3))


def test_restroked_writers_share_the_configured_fraction():
    from htr.data.synthetic.dataset import split_hand

    config = SyntheticConfig(p_restroke=0.5, p_connect=0.5)
    hands = [split_hand(config, "train", i, joined=False) for i in range(400)]
    assert 0.4 < np.mean([h.restroke for h in hands]) < 0.6
    assert 0.4 < np.mean([h.connect > 0 for h in hands]) < 0.6
    assert all(h.connect == 0 for h in (split_hand(config, "train", i, joined=True) for i in range(50)))
    assert split_hand(SyntheticConfig(**FONTS_ONLY), "train", 0, joined=False) == NO_HAND
    # The defaults are the measured half-and-half mix.
    assert (SyntheticConfig().p_restroke, SyntheticConfig().p_connect) == (0.5, 0.5)


def test_prose_punctuation_makes_valid_labels():
    rng = np.random.default_rng(0)
    attached = [attach_punctuation("said", rng) for _ in range(500)]
    assert {"said,", "said.", "said's", '"said', "(said"} <= set(attached)
    assert any(a in ("Mr.", "Mrs.", "Dr.", "St.") for a in attached)
    config = SyntheticConfig(p_attached=0.3)
    texts = [sample_text(config, np.random.default_rng(i)) for i in range(1500)]
    assert all(label_ok(t) for t in texts)
    with_marks = [t for t in texts if any(c.isalpha() for c in t) and any(c in ",.;:'\"()?!" for c in t)]
    assert 0.15 < len(with_marks) / len(texts) < 0.4  # ~30 % of the ~88 % that are words
    plain = [sample_text(SyntheticConfig(), np.random.default_rng(i)) for i in range(1500)]
    assert sum(any(c.isalpha() for c in t) and any(c in ",.;:\"()?!" for c in t) for t in plain) < 0.02 * len(plain)


def pressure_stroke() -> np.ndarray:
    """A gray scan of one stroke whose ink fades from black (left) to light gray (right), on paper
    lit unevenly (a ramp of 60 gray levels from top to bottom)."""
    paper = np.linspace(200, 250, 60, dtype=np.float32)[:, None] * np.ones((1, 300), np.float32)
    ink = np.linspace(10, 170, 300, dtype=np.float32)[None, :]
    stroke = np.zeros((60, 300), np.float32)
    cv2.line(stroke, (20, 30), (280, 30), 1.0, 5)
    return np.clip(paper * (1 - stroke) + ink * stroke, 0, 255).astype(np.uint8)


def test_binarized_scan_is_black_on_white_and_breaks_light_strokes():
    crop = pressure_stroke()
    stroke = np.zeros(crop.shape, np.uint8)
    cv2.line(stroke, (20, 30), (280, 30), 1, 5)
    # Whole strokes at Otsu's threshold (no shift): pure black and white, the paper white in spite
    # of its lighting ramp, the stroke black over (almost) its whole length.
    whole = binarize_scan(crop, np.random.default_rng(0), max_shift=0.0)
    assert set(np.unique(whole)) <= {0, 255}
    assert (whole[stroke == 0] == 255).mean() > 0.99
    kept = (whole[25:36] == 0).any(axis=0)
    assert kept[20:270].mean() > 0.95
    # Moved towards the ink, the light (right) end drops out and the dark (left) end stays.
    broken = [binarize_scan(crop, np.random.default_rng(s), max_shift=0.6) for s in range(20)]
    lengths = [int((b[25:36] == 0).any(axis=0).sum()) for b in broken]
    assert min(lengths) < 0.8 * kept.sum() and all((b[25:36, 20:60] == 0).any(axis=0).all() for b in broken)
    assert all(((b == 0) & (stroke == 0)).sum() == 0 for b in broken)  # never ink where there was none
    # Seeded: same seed, same image; the seeds differ in how far the strokes break.
    assert np.array_equal(binarize_scan(crop, np.random.default_rng(3)), binarize_scan(crop, np.random.default_rng(3)))
    assert len(set(lengths)) > 3
    # A faint mark (a light dot) keeps its ink whatever the shift: its label still has something to read.
    dot = np.full((30, 30), 240, np.uint8)
    cv2.circle(dot, (15, 15), 3, 200, -1)
    assert all((binarize_scan(dot, np.random.default_rng(s), max_shift=0.6) == 0).any() for s in range(10))


def test_binarized_share_of_the_synthetic_data():
    base, binarized = SyntheticConfig(), SyntheticConfig(p_binarize=0.5)
    flags = []
    for i in range(40):
        a, ta = render_sample(base, "train", i)
        b, tb = render_sample(binarized, "train", i)
        assert ta == tb and np.array_equal(b, render_sample(binarized, "train", i)[0])
        is_binary = set(np.unique(b)) <= {0, 255}
        flags.append(is_binary)
        if not is_binary:
            assert np.array_equal(a, b)  # crops not binarised are today's crops, pixel for pixel
        else:
            assert a.shape == b.shape and (b == 0).mean() < 0.6
    assert 0.25 < np.mean(flags) < 0.75
    # Off, the option is not in the manifests: data generated before it existed stays valid.
    assert "p_binarize" not in base.to_dict() and binarized.to_dict()["p_binarize"] == 0.5


def ink_extent(canvas: np.ndarray) -> tuple[int, int]:
    """Height and width of the ink's bounding box."""
    rows, cols = np.nonzero(canvas < 160)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_translation_settings():
    crop = normalize_contrast(render_sample(SyntheticConfig(), "train", 1)[0])
    # p_in_place = 1: the baseline's canvas, whatever the seed.
    still = WordTransform("translate", seed=3, translation=Translation(p_in_place=1.0))
    for i in range(4):
        assert np.array_equal(still(crop, index=i), crop_to_canvas(crop))
    # No shrinking, no shear: the fitted word keeps its full size (only its place changes).
    full = WordTransform("translate", seed=3, translation=Translation(scale=(1.0, 1.0), p_affine=0.0))
    fitted = ink_extent(fit_word(crop))
    for i in range(4):
        height, width = ink_extent(full(crop, index=i))
        assert height >= fitted[0] - 1 and width >= fitted[1] - 1
    # Default shrinking makes words smaller on average than a narrow range does.
    def mean_height(t: WordTransform) -> float:
        return float(np.mean([ink_extent(t(crop, index=i))[0] for i in range(40)]))
    wide = WordTransform("translate", seed=0, translation=Translation())
    narrow = WordTransform("translate", seed=0, translation=Translation(scale=(0.8, 1.0)))
    assert mean_height(narrow) > mean_height(wide)
    for bad, field in (({"scale": (0.5, 1.2)}, "scale"), ({"p_in_place": 2.0}, "p_in_place")):
        with pytest.raises(ValueError, match=f"data.translation.{field}"):
            Translation(**bad)
    with pytest.raises(ValueError, match="data.translation"):
        WordDataModule(translation={"zoom": 2})


@pytest.mark.parametrize(("root", "n"), [("data/real-handwriting", 300), ("data/real-words", 8)])
def test_real_sets_load_through_the_folder_reader(root: str, n: int):
    data = WordDataModule(source="folder", root=str(ROOT / root), num_workers=0)
    words = data.splits()["all"]
    assert len(words) == n and all(w.text and " " not in w.text for w in words)
    item = data.dataset("all")[0]
    assert tuple(item["image"].shape) == (1, 32, 128) and item["text"] == words[0].text
    assert (ROOT / root / "LICENSE").is_file() or list((ROOT / root).glob("LICENSE*"))


def test_word_cer_and_the_worst_read_strip():
    assert word_cer("the", "the") == 0.0
    assert word_cer("tho", "the") == pytest.approx(1 / 3)
    assert word_cer("", "and") == 1.0
    assert word_cer("hello", "he") == pytest.approx(3 / 2)
    texts = ["the", "and", "word", "of"]
    canvases = np.full((4, 32, 128), 255, np.uint8)
    readings = {"a": ["the", "aud", "xxxx", "of"], "b": ["the", "and", "wxrd", "o"]}
    fig = worst_read_strip(texts, canvases, readings, count=2, columns=2)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert [t.splitlines()[0] for t in titles] == ["true: 'word'", "true: 'of'"]  # mean CER 0.625, then 0.25
    assert "a: 'xxxx'" in titles[0] and "b: 'wxrd'" in titles[0]


def test_char_edits_are_a_minimal_alignment():
    assert char_edits("kitten", "sitting") == [("k", "s"), ("e", "i"), ("", "g")]
    assert char_edits("and", "nd") == [("a", "")] and char_edits("the", "the") == []
    assert char_edits("", "ab") == [("", "a"), ("", "b")] and char_edits("of", "") == [("o", ""), ("f", "")]
    # Their number is the CER's numerator (torchmetrics' edit distance) on random words.
    rng = np.random.default_rng(0)
    for _ in range(200):
        truth = "".join(rng.choice(list("aeint"), int(rng.integers(1, 8))))
        reading = "".join(rng.choice(list("aeint"), int(rng.integers(0, 8))))
        edits = char_edits(truth, reading)
        assert len(edits) == round(word_cer(reading, truth) * len(truth)), (truth, reading)
        # Letters left out and added balance the two lengths; what is left out was in the truth.
        left_out, added = [t for t, r in edits if not r], [r for t, r in edits if not t]
        assert len(truth) - len(left_out) + len(added) == len(reading)
        assert all(truth.count(c) >= left_out.count(c) for c in set(left_out))


def test_error_rows_count_each_models_character_errors():
    texts = ["and", "the", "ate"]
    readings = {"a": ["nd", "tle", "ate"], "b": ["anl", "the", "atte"]}
    assert error_counts(texts, readings["a"]) == {("a", ""): 1, ("h", "l"): 1}
    header, rows = error_rows(["a", "b"], texts, readings, top=3)
    assert header == ["errors", "a", "b"]
    assert rows[:3] == [["substituted", "1", "1"], ["left out", "1", "0"], ["added", "0", "1"]]
    assert rows[3][0] == "#1" and rows[3][2] in ("d → l: 1 (50 %)", "t added: 1 (50 %)")
    assert {rows[3][1], rows[4][1]} == {"a left out: 1 (50 %)", "h → l: 1 (50 %)"} and len(rows) == 5
    with pytest.raises(ValueError, match="3 texts but 2 readings"):
        error_counts(texts, ["and", "the"])


@pytest.mark.slow
def test_ablation_runs_each_variant_once_against_the_control(tmp_path: Path):
    import json

    import torch

    from conftest import TINY, WORDS, write_folder_dataset
    from htr.errors import ConfigError, UsageError
    from htr.experiment.ablation import main as ablation_main
    from htr.model.module import HTRModule
    from htr.provenance import weights_digest

    start = HTRModule(**TINY)
    init = tmp_path / "start.ckpt"
    torch.save({"state_dict": start.state_dict(), "hyper_parameters": dict(start.hparams)}, init)
    words = write_folder_dataset(tmp_path / "words", WORDS, per_word=1)
    variants = {
        "control": {},
        "restroke": {"synthetic": {"p_restroke": 1.0}, "description": "all re-stroked"},
        "narrow": {"augmentation": "translate", "translation": {"scale": [0.8, 1.0]}},
        "fresh": {"synthetic": {"seed": 1}},  # other writers and words
        "reseeded": {"seed": 1},  # the control's words, another batch order
    }
    args = [
        "--init", str(init), "--samples", "16", "--n_val", "4", "--batch_size", "8", "--num_workers", "0", "--warmup_steps", "1",
        "--data_dir", str(tmp_path / "generated"), "--results", str(tmp_path / "results"),
        "--eval_sets", json.dumps({"words": {"data": {"source": "folder", "root": str(words)}, "split": "test"}}),
        "--probes", json.dumps({"source": "folder", "root": str(words)}),
        "--variants", json.dumps(variants),
    ]
    assert ablation_main(args) == 0
    results = {n: json.loads((tmp_path / "results" / f"{n}.json").read_text()) for n in variants}
    assert results["narrow"]["recipe"]["translation"] == {"scale": [0.8, 1.0]} and results["narrow"]["recipe"]["augmentation"] == "translate"
    assert all(r["words"]["n"] == len(WORDS) and r["recipe"]["samples"] == 16 for r in results.values())
    # The shortcut scores of each fine-tuned model, and its weights for later diagnostics.
    from htr.model.module import load_checkpoint

    for name, r in results.items():
        assert set(r["shortcuts"]) == {"acc@shift0", "acc_drop@8plus", "max_acc_drop", "cer@clean", "cer_increase@specks"}
        assert r["shortcuts"]["max_acc_drop"] >= r["shortcuts"]["acc_drop@8plus"] - 1e-9  # the worst shift is at least the mean
        tuned = load_checkpoint(tmp_path / "generated" / "models" / f"{name}.ckpt")
        assert any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), start.state_dict().values()))
    # Same generator settings, same generated set: the control's set serves "narrow" and "reseeded" too.
    sets = {json.loads((d / "manifest.json").read_text())["config"]["seed"] for d in (tmp_path / "generated").iterdir() if d.name != "models"}
    assert len([d for d in (tmp_path / "generated").iterdir() if d.name != "models"]) == 3 and sets == {0, 1}
    assert results["reseeded"]["recipe"]["seed"] == 1 and results["control"]["recipe"]["seed"] == 0
    weights = {n: load_checkpoint(tmp_path / "generated" / "models" / f"{n}.ckpt").state_dict() for n in ("control", "reseeded")}
    assert any(not torch.equal(weights["control"][k], weights["reseeded"][k]) for k in weights["control"])
    assert {r["recipe"]["init"] for r in results.values()} == {str(init)}
    assert {r["init_weights"] for r in results.values()} == {weights_digest(start.state_dict())}
    # A second call trains nothing (the results exist) and prints the table against the control.
    stamps = {n: (tmp_path / "results" / f"{n}.json").stat().st_mtime_ns for n in variants}
    assert ablation_main(args) == 0
    assert stamps == {n: (tmp_path / "results" / f"{n}.json").stat().st_mtime_ns for n in variants}
    with pytest.raises(ConfigError, match="--only: no variant named nothing"):
        ablation_main([*args, "--only", "[nothing]"])
    with pytest.raises(UsageError, match=r"variants.control: unknown keys \['zoom'\]"):
        ablation_main([*args, "--variants", json.dumps({"control": {"zoom": 2}})])
    with pytest.raises(UsageError, match=r"variants.control.seed: 'one' is not a whole number"):
        ablation_main([*args, "--variants", json.dumps({"control": {"seed": "one"}})])
    with pytest.raises(UsageError, match=r"variants.control.description: .* is not text; write it without ': '"):
        ablation_main([*args, "--variants", json.dumps({"control": {"description": "shrink less: full-height words"}})])


def test_ablation_refuses_a_reference_fine_tuned_from_other_weights(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A variant measured against results that started from what its init path held before (a
    retrained shipped checkpoint) stops before training, naming the key; unrecorded: a warning."""
    import json
    import logging

    import torch

    from conftest import TINY
    from htr.errors import ConfigError
    from htr.experiment.ablation import build_parser, check_same_starts
    from htr.experiment.ablation import main as ablation_main
    from htr.model.module import HTRModule, load_checkpoint
    from htr.provenance import weights_digest

    init = tmp_path / "start.ckpt"
    torch.manual_seed(0)
    old = HTRModule(**TINY)
    torch.save({"state_dict": old.state_dict(), "hyper_parameters": dict(old.hparams)}, init)
    old_weights = load_checkpoint(init).provenance["weights"]
    assert old_weights == weights_digest(old.state_dict()) and len(old_weights) == 12
    results = tmp_path / "results"
    results.mkdir()
    (results / "control.json").write_text(json.dumps({"variant": "control", "init_weights": old_weights}))
    args = ["--init", str(init), "--results", str(results), "--data_dir", str(tmp_path / "generated"),
            "--variants", json.dumps({"control": {}, "wider": {"synthetic": {"p_restroke": 1.0}}})]
    cfg = build_parser().parse_args(args)
    check_same_starts(cfg, ["wider"])  # same weights: passes
    new = HTRModule(**TINY)  # "retrained" under the same path
    assert weights_digest(new.state_dict()) != old_weights
    torch.save({"state_dict": new.state_dict(), "hyper_parameters": dict(new.hparams)}, init)
    with pytest.raises(ConfigError, match=rf"variants.wider.against: .*control.json was fine-tuned from other weights \({old_weights}\)"):
        ablation_main([*args, "--only", "[wider]"])
    assert not (results / "wider.json").exists() and not (tmp_path / "generated").exists()  # stopped before any data or training
    (results / "control.json").write_text(json.dumps({"variant": "control"}))  # results of before the record
    with caplog.at_level(logging.WARNING, logger="htr.ablation"):
        check_same_starts(cfg, ["wider"])
    assert "records no starting weights" in caplog.text


@pytest.mark.parametrize(("config", "marker"), [("ablation", "ablation table"), ("ablation-shapes", "ablation table: ablation-shapes")])
def test_data_readme_quotes_the_committed_ablation_results(config: str, marker: str):
    """data/README.md's ablation tables are the runner's tables of the committed results (no hand-copied numbers)."""
    import re

    from htr.experiment.ablation import build_parser, results_table

    cfg = build_parser().parse_args(["--config", str(ROOT / "configs" / "study" / f"{config}.yaml")])
    cfg.results = str(ROOT / cfg.results)  # the config's folder, wherever pytest runs from
    readme = (ROOT / "data" / "README.md").read_text()
    block = re.search(rf"<!-- {marker} -->\n(.*?)<!-- /{marker} -->", readme, re.S)
    assert block is not None, f"data/README.md lost its table markers <!-- {marker} -->"
    assert block.group(1).strip() == results_table(cfg).strip()
