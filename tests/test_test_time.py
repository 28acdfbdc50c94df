"""Test-time geometry probes (htr.experiment.test_time): each reshape does what it says, at 1.0 it
is the evaluation's own canvas (so its CER is evaluate.py's), and bad factors are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, render_word, write_folder_dataset
from htr.data.preprocess import BACKGROUND, HEIGHT, WIDTH, crop_to_canvas, load_crop, normalize_contrast
from htr.errors import run_main
from htr.experiment import test_time
from htr.experiment.evaluate import eval_data, evaluate_split
from htr.model.module import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")
SHIPPED = ROOT / "checkpoints" / "baseline.ckpt"


def ink_box(canvas: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(canvas < BACKGROUND // 2)
    return int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())


@pytest.fixture(scope="module")
def short_crop() -> np.ndarray:
    crop = normalize_contrast(render_word("ab", size=40))
    assert crop.shape[1] * HEIGHT / crop.shape[0] < WIDTH / 2  # fitted by its height, with room to double its width
    return crop


@pytest.mark.parametrize("name", ["stretch", "shrink"])
@pytest.mark.parametrize("align", ["left", "centre"])
def test_factor_one_is_the_evaluation_canvas(short_crop: np.ndarray, name: str, align: str) -> None:
    reshape = test_time.RESHAPES[name][0]
    assert np.array_equal(reshape(short_crop, 1.0, align), crop_to_canvas(short_crop, align))


def test_stretch_widens_the_ink_at_the_same_height(short_crop: np.ndarray) -> None:
    x0, x1, y0, y1 = ink_box(test_time.stretched(short_crop, 1.0))
    sx0, sx1, sy0, sy1 = ink_box(test_time.stretched(short_crop, 2.0))
    assert (sx1 - sx0) / (x1 - x0) == pytest.approx(2.0, rel=0.1)
    assert (sy0, sy1) == pytest.approx((y0, y1), abs=1)


@pytest.mark.parametrize("align", ["left", "centre"])
def test_shrink_scales_the_word_and_places_it_as_the_model_expects(short_crop: np.ndarray, align: str) -> None:
    x0, x1, y0, y1 = ink_box(test_time.shrunk(short_crop, 1.0, align))
    sx0, sx1, sy0, sy1 = ink_box(test_time.shrunk(short_crop, 0.5, align))
    assert (sy1 - sy0) / (y1 - y0) == pytest.approx(0.5, abs=0.1) and (sx1 - sx0) / (x1 - x0) == pytest.approx(0.5, abs=0.1)
    assert (sy0 + sy1) / 2 == pytest.approx(HEIGHT / 2, abs=2)  # vertically centred
    if align == "left":
        assert sx0 <= x0 + 1
    else:
        assert (sx0 + sx1) / 2 == pytest.approx(WIDTH / 2, abs=3)


def test_letter_proportions_measure_width_per_letter(short_crop: np.ndarray) -> None:
    wide = cv2.resize(short_crop, (2 * short_crop.shape[1], short_crop.shape[0]), interpolation=cv2.INTER_LINEAR)
    one = test_time.letter_proportions([short_crop], ["ab"])["median"]
    assert test_time.letter_proportions([wide], ["ab"])["median"] == pytest.approx(2 * one, rel=0.1)
    assert test_time.letter_proportions([short_crop], ["abcd"])["median"] == pytest.approx(one / 2)
    assert test_time.letter_proportions([np.full((10, 10), 255, np.uint8)], ["a"]) == {}  # no ink: nothing to measure


def test_the_cer_at_one_is_what_evaluation_reports(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "words", ["the", "and", "of", "wood"], per_word=2, splits=("test",)) / "test"  # labels.tsv alone: split all
    module = load_checkpoint(SHIPPED)
    data = eval_data({"source": "folder", "root": str(root)}, module, num_workers=0)
    samples = data.splits()["all"]
    reported = evaluate_split(module, data, "all", progress=False)["cer"]
    probed = test_time.probe(module, [load_crop(s.path) for s in samples], [s.text for s in samples], {"stretch": [1.0, 3.0], "shrink": [1.0]})
    assert probed["stretch"]["1"] == pytest.approx(reported, abs=1e-6) and probed["shrink"]["1"] == pytest.approx(reported, abs=1e-6)
    assert probed["stretch"]["3"] != probed["stretch"]["1"]  # a reshape the model notices changes what it reads


def test_the_command_writes_each_checkpoints_cer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_folder_dataset(tmp_path / "words", ["the", "of"], per_word=1, splits=("test",)) / "test"
    out = tmp_path / "probe.json"
    args = [str(SHIPPED), "--data", json.dumps({"source": "folder", "root": str(root)}), "--stretch", "[1.0, 1.5]", "--shrink", "[0.8]", "--out", str(out)]
    assert test_time.main(args) == 0
    written = json.loads(out.read_text())
    assert 0 < written["letter_proportions"]["q25"] <= written["letter_proportions"]["median"] <= written["letter_proportions"]["q75"]
    result = written["checkpoints"]["baseline"]
    assert result["n"] == 2 and set(result["cer"]["stretch"]) == {"1", "1.5"} and set(result["cer"]["shrink"]) == {"0.8"}
    assert "x1.5" in capsys.readouterr().out


@pytest.mark.parametrize(("flag", "value", "message"), [("--shrink", "[1.2]", "shrink: factors [1.2] outside 0.1..1.0"), ("--stretch", "[0]", "stretch: factors [0.0] outside")])
def test_bad_factors_are_one_line_errors(flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_main(test_time.main, [str(SHIPPED), flag, value], prog="python -m htr.experiment.test_time")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
