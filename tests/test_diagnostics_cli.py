"""``python -m htr.diagnostics``: edit table + figure on a saved checkpoint; bad input -> exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from conftest import render_word
from htr.diagnostics.__main__ import PROG, main
from htr.errors import run_main
from htr.model.module import HTRModule

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt_and_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("diag_cli")
    torch.manual_seed(0)
    module = HTRModule(charset="aer")
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu", devices=1)
    trainer.strategy.connect(module)
    ckpt = root / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    image = root / "are.png"
    Image.fromarray(render_word("are")).save(image)
    return ckpt, image


def test_edit_prints_table_and_writes_figure(ckpt_and_image, tmp_path, capsys) -> None:
    ckpt, image = ckpt_and_image
    out = tmp_path / "fig.png"
    rc = main(["edit", str(ckpt), str(image), "--text", "are", "--set", "10,0,14,4=0", "--set", "dot:30,5,1=0;line:0,0,5,5,1=255", "--out", str(out)])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["edit", "score", "recognised"]
    assert lines[1].startswith("original") and lines[2].startswith("10,0,14,4=0")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_shift_and_relevance_commands(ckpt_and_image, tmp_path) -> None:
    ckpt, image = ckpt_and_image
    assert main(["shift", str(ckpt), str(image), "--text", "are", "--max_shift", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["relevance", str(ckpt), str(image), "--text", "are", "--window", "16", "--stride", "16", "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "s.png").exists() and (tmp_path / "r.png").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "1,2,3=0"],  # bad spec
        ["--text", "arz"],  # 'z' not in the checkpoint's charset
        ["IMAGE=missing.png"],  # missing image
        ["CKPT=missing.ckpt"],  # missing checkpoint
    ],
)
def test_bad_input_is_one_line_exit_2(ckpt_and_image, args, capsys) -> None:
    ckpt, image = ckpt_and_image
    text = "are"
    extra = []
    for a in args:
        if a.startswith("IMAGE="):
            image = Path(a[6:])
        elif a.startswith("CKPT="):
            ckpt = Path(a[5:])
        else:
            extra.append(a)
    if "--text" in extra:
        text = extra[extra.index("--text") + 1]
        extra = [a for a in extra if a not in ("--text", text)]
    with pytest.raises(SystemExit) as stop:  # as `python -m htr.diagnostics` runs main
        run_main(main, ["edit", str(ckpt), str(image), "--text", text, *extra], prog=PROG)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith("python -m htr.diagnostics: error:")


@pytest.mark.slow
def test_module_entry_point_exit_code(ckpt_and_image) -> None:
    ckpt, image = ckpt_and_image
    proc = subprocess.run(
        [sys.executable, "-m", "htr.diagnostics", "edit", str(ckpt), str(image), "--text", "are", "--set", "nonsense"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("python -m htr.diagnostics: error:")
