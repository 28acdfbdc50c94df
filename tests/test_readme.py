"""The command lines of the README (the manual) and docs/RESULTS.md (the results log) work as
written on a fresh clone, and the results log quotes the committed numbers.

Cheap commands (the diagnostics on the shipped checkpoints) run for real in a scratch folder
that sees the repository's files; expensive ones (training, evaluation, the study, the preview
that generates the training set) are parsed by their own parsers, so a renamed or typo'd option,
a bad value or a missing config/checkpoint/image fails here.
"""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
RESULTS = (ROOT / "docs" / "RESULTS.md").read_text()  # commands there run from the repository root too
# Outputs and the user's own runs: not in a fresh clone, and need not be.
NOT_IN_CLONE = ("runs/", "/path/to/", "reports/")


def readme_commands(text: str) -> list[str]:
    """``python ...`` lines of the fenced blocks and `python ...` spans of the prose of a Markdown ``text``, one line each."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        commands += [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("python ")]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    commands += [" ".join(span.split()) for span in re.findall(r"`(python [^`]+)`", prose)]
    # A bare name in prose ("`python -m htr.diagnostics` reports ...") is a mention, not a command.
    return [c for c in dict.fromkeys(commands) if len(shlex.split(c)) > (3 if shlex.split(c)[1] == "-m" else 2)]


COMMANDS = list(dict.fromkeys(readme_commands(README) + readme_commands(RESULTS)))


def test_readme_has_the_commands_this_test_expects() -> None:
    scripts = {shlex.split(c)[1] if shlex.split(c)[1] != "-m" else shlex.split(c)[2] for c in readme_commands(README)}
    assert {"train.py", "evaluate.py", "study.py", "htr.diagnostics", "htr.data.preview"} <= scripts
    assert not [c for c in COMMANDS if "..." in c or re.search(r"\b[A-Z]{3,}\b", c)], "placeholders left in a README command"


def input_files(argv: list[str]) -> list[str]:
    """Paths a command reads (configs, checkpoints, images), not what it writes (--out)."""
    outputs = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--out"}
    return [a for a in argv if re.search(r"\.(ya?ml|ckpt|png|npz)$", a) and a not in outputs and not a.startswith(NOT_IN_CLONE)]


# The diagnostics commands run for real (a subprocess on the shipped checkpoints, ~7 s each): full suite only.
@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.slow) if c.startswith("python -m htr.diagnostics") else c for c in COMMANDS])
def test_readme_command(command: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = shlex.split(command)[1:]
    for path in input_files(argv):
        assert (ROOT / path).is_file(), f"{command}: {path} is not in the repository"
    if argv[0] == "-m" and argv[1] == "htr.diagnostics":
        # Cheap: run it as written, from a folder that holds the repository's inputs.
        for name in ("checkpoints", "docs", "configs", "htr"):
            (tmp_path / name).symlink_to(ROOT / name)
        proc = subprocess.run([sys.executable, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        out = argv[argv.index("--out") + 1]
        assert (tmp_path / out).read_bytes()[:4] == b"\x89PNG"
        if argv[2] == "shift":  # the periodicity numbers the README promises
            assert re.search(r"share of power at 4 px \d\.\d{3}, 4-px swing \d\.\d{4} nats", proc.stdout), proc.stdout
        return
    if argv[0] == "-m" and argv[1] == "htr.experiment.ablation":
        from htr.experiment.ablation import build_parser as ablation_parser

        cfg = ablation_parser().parse_args(argv[2:])
        assert all((ROOT / v.get("init", cfg.init)).is_file() for v in cfg.variants.values()), cfg.variants
    elif argv[0] == "-m":
        assert argv[1] in ("htr.data.preview", "htr.experiment.test_time"), command
        build_parser = importlib.import_module(argv[1]).build_parser
        build_parser().parse_args(argv[2:])
    elif argv[0] == "train.py":
        from htr.train.cli import main

        # --print_config parses and validates the whole config (configs, types, choices), then exits 0.
        with pytest.raises(SystemExit) as stop:
            main([*[a for a in argv[1:] if a != "--print_config"], "--print_config"])
        assert stop.value.code in (0, None), capsys.readouterr().err
    elif argv[0] == "evaluate.py":
        from htr.experiment.evaluate import build_parser

        build_parser().parse_args(argv[1:])
    elif argv[0] == "explore.py":
        from htr.explore.__main__ import build_parser as explore_parser

        explore_parser().parse_args(argv[1:])
    elif argv[0] == "study.py":
        from htr.experiment.study import build_parser

        cfg = build_parser().parse_args(argv[1:])
        assert all((ROOT / path).is_file() for path in cfg.arms.values()), cfg.arms
    else:
        pytest.fail(f"no check for README command {command!r}")


def test_results_quote_the_shipped_comparison_in_the_reports_units() -> None:
    """docs/RESULTS.md's shipped-checkpoint table: the numbers of docs/results/compare/metrics.json, formatted as the report formats them."""
    import json

    from htr.experiment.figures import CER, PERCENT, POINTS, SHARE

    metrics = json.loads((ROOT / "docs" / "results" / "compare" / "metrics.json").read_text())
    rows = {line.split(" | ")[0].strip("| "): line for line in RESULTS.splitlines() if line.startswith("| ")}

    def cells(label: str) -> list[str]:
        row = next(v for k, v in rows.items() if k.startswith(label))
        return [c.strip().strip("*") for c in row.strip("|").split("|")[1:3]]  # the shipped pair (then the previous one)

    models = ("baseline", "augmented")
    assert cells("test CER / WER / word acc.") == [
        f"{CER.fmt(metrics[m]['test']['cer'])} / {PERCENT.fmt(metrics[m]['test']['wer'])} / {PERCENT.fmt(metrics[m]['test']['acc'])}" for m in models
    ]
    assert cells("real handwriting, 300 words of one writer") == [
        " / ".join(CER.fmt(metrics[m]["real_handwriting"][k]) if k == "cer" else PERCENT.fmt(metrics[m]["real_handwriting"][k]) for k in ("cer", "wer", "acc")) for m in models
    ]
    assert cells("accuracy drop, mean over shifts >= 8 px") == [POINTS.fmt(metrics[m]["diagnostics"]["acc_drop@8plus"]) for m in models]
    assert cells("off-ink evidence") == [SHARE.fmt(metrics[m]["diagnostics"]["off_ink_evidence"]) for m in models]
    assert [c.split(" ")[0] for c in cells("deletion AOPC")] == [SHARE.fmt(metrics[m]["diagnostics"]["aopc"]) for m in models]
