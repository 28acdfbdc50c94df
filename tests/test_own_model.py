"""Own models on the command line (``--scorer module:factory``) and the runnable example of docs/OWN_MODEL.md."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, render_word
from htr.data.preprocess import to_canvas
from htr.diagnostics.__main__ import PROG, main
from htr.diagnostics.probes import ProbeSet
from htr.errors import run_main

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLE = ROOT / "examples" / "own_recognizer.py"
FACTORY = f"{EXAMPLE}:load_scorer"


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example's model, untrained but seeded, saved as the factory loads it; a word image; probes."""
    spec = importlib.util.spec_from_file_location("own_recognizer", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    root = tmp_path_factory.mktemp("own")
    torch.manual_seed(0)
    torch.save(example.RGBRecognizer().state_dict(), root / "model.pt")
    Image.fromarray(render_word("are")).save(root / "are.png")
    ProbeSet(["p0", "p1"], ["are", "ear"], np.stack([to_canvas(render_word(w, seed=i)) for i, w in enumerate(["are", "ear"])])).save(root / "probes.npz")
    return {"model": root / "model.pt", "image": root / "are.png", "probes": root / "probes.npz", "root": root}


def test_shift_and_edit_of_an_own_model_through_its_factory(untrained, capsys) -> None:
    root = untrained["root"]
    assert main(["shift", str(untrained["model"]), str(untrained["image"]), "--text", "are", "--max_shift", "8", "--scorer", FACTORY, "--out", str(root / "s.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["shift", "score", "recognised"] and len(lines) >= 10 and (root / "s.png").is_file()
    assert main(["edit", str(untrained["model"]), str(untrained["image"]), "--text", "are", "--set", "100,4,124,28=0", "--scorer", FACTORY, "--out", str(root / "e.png")]) == 0


def test_scores_of_an_own_model_on_a_probe_set(untrained, capsys) -> None:
    out = untrained["root"] / "scores.json"
    args = ["scores", str(untrained["model"]), "--probes", str(untrained["probes"]), "--scorer", FACTORY, "--max_shift", "9", "--relevance_probes", "1", "--relevance_window", "16", "--out", str(out)]
    assert main(args) == 0
    written = json.loads(out.read_text())
    assert {"acc@shift9", "acc_drop@8plus", "periodicity@4", "cer_increase@specks", "off_ink_evidence", "aopc"} <= set(written["scores"])
    assert written["settings"]["relevance_window"] == 16 and len(written["probes"]) == 2


@pytest.mark.parametrize("spec", ["no_colon", "examples/missing.py:load_scorer", f"{EXAMPLE}:not_there", "htr.no_such_module:f"])
def test_a_bad_scorer_spec_is_one_line_exit_2(untrained, spec: str, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        run_main(main, ["shift", str(untrained["model"]), str(untrained["image"]), "--text", "are", "--scorer", spec], prog=PROG)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith(f"{PROG}: error: --scorer")


@pytest.mark.slow
def test_the_example_trains_wraps_and_diagnoses_an_own_recognizer(tmp_path: Path) -> None:
    out = tmp_path / "own"
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {p.name for p in out.iterdir()} >= {"shift.png", "relevance.png", "scores.json", "model.pt", "probes.npz", "probes.json"}
    scores = json.loads((out / "scores.json").read_text())["scores"]
    assert scores["acc@shift0"] >= 0.5  # it learnt to read the words...
    assert scores["acc_drop@8plus"] > 0.2  # ...where the preprocessing puts them: the translation shortcut
    # The CLI reads the saved model through the example's factory, from the repository root.
    cli = subprocess.run(
        [sys.executable, "-m", "htr.diagnostics", "shift", str(out / "model.pt"), "docs/results/examples/are.png", "--text", "are",
         "--scorer", "examples.own_recognizer:load_scorer", "--out", str(out / "are_shift.png")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert (out / "are_shift.png").is_file() and "periodicity of the log-score curve" in cli.stdout
    # ... and runs the whole suite on the probe set the example saved (docs/OWN_MODEL.md's command).
    suite = subprocess.run(
        [sys.executable, "-m", "htr.diagnostics", "scores", str(out / "model.pt"), "--probes", str(out / "probes.npz"),
         "--scorer", "examples.own_recognizer:load_scorer", "--relevance_probes", "1", "--relevance_window", "8", "--out", str(out / "probe_scores.json")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert suite.returncode == 0, suite.stderr[-2000:]
    assert json.loads((out / "probe_scores.json").read_text())["scores"]["acc@shift0"] == scores["acc@shift0"]  # the same suite, the same numbers
