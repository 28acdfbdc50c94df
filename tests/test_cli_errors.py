"""Every command line: bad input is one line on stderr naming the option or file, exit 2, no traceback.

The corpus (CORPUS) drives every entry point with bad input: for each option a wrong type, a
value out of range and (for a path) a missing file, nested options, a non-checkpoint file
given as a checkpoint, an unreadable image. It runs through each entry point's real
``__main__`` block, many cases per process (tests/cli_driver.py: one torch start-up per entry
point, not per case); the fast tier runs a representative subset in this process.
"""

from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch

from conftest import TINY, WORDS, write_folder_dataset
from htr.data.preview import main as preview_main
from htr.data.synthetic.__main__ import main as synthetic_main
from htr.diagnostics.__main__ import main as diagnostics_main
from htr.errors import ConfigError, HTRError, UsageError, run_main
from htr.experiment.ablation import main as ablation_main
from htr.experiment.evaluate import main as evaluate_main
from htr.experiment.study import main as study_main
from htr.explore.__main__ import main as explore_main
from htr.model.module import HTRModule
from htr.train.cli import main as train_main
from tools.fetch_fonts import main as fetch_fonts_main

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ["--config", str(ROOT / "configs" / "train" / "baseline.yaml")]


# ---- the scratch files the corpus refers to as {name} ----------------------------------------------
def make_inputs(tmp: Path) -> dict[str, str]:
    """Everything the corpus's placeholders name, made here (no download): a small folder dataset,
    one whose images are all garbage, a tiny valid checkpoint, junk files of every kind."""
    words = write_folder_dataset(tmp / "words", WORDS[:4], per_word=1)
    flat = write_folder_dataset(tmp / "flat_words", WORDS[:4], per_word=1, splits=(".",))  # one labels.tsv, no split folders
    garbage = write_folder_dataset(tmp / "garbage_words", WORDS[:2], per_word=1)
    for png in garbage.rglob("*.png"):
        png.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    module = HTRModule(**TINY)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, tmp / "tiny.ckpt")
    (tmp / "junk.ckpt").write_bytes(b"not a checkpoint at all\n" * 10)
    (tmp / "empty.ckpt").write_bytes(b"")
    (tmp / "junk.yaml").write_text("trainer: [unclosed\n  : - x\n")
    (tmp / "notes.md").write_text("# no table markers here\n")
    (tmp / "a_file").write_text("a file where a folder is expected\n")
    (tmp / "probes.npz").write_bytes(b"garbage npz")
    (tmp / "probes.json").write_text("{not json")
    run = tmp / "runs" / "junkresume" / "checkpoints"
    run.mkdir(parents=True)
    (run / "last.ckpt").write_bytes(b"torn checkpoint")
    return {
        "tmp": str(tmp), "words": str(words), "flat_words": str(flat), "garbage_words": str(garbage), "garbage_png": str(garbage / "test" / "images" / "0000.png"),
        "ckpt": str(tmp / "tiny.ckpt"), "junk_ckpt": str(tmp / "junk.ckpt"), "empty_ckpt": str(tmp / "empty.ckpt"),
        "junk_yaml": str(tmp / "junk.yaml"), "notes_md": str(tmp / "notes.md"), "a_file": str(tmp / "a_file"),
        "junk_probes": str(tmp / "probes.npz"), "missing": str(tmp / "missing"),
    }


# ---- the corpus ------------------------------------------------------------------------------------
class Entry(NamedTuple):
    entry: str  # as the driver runs it: a script or "-m module"
    prog: str  # the "prog: error:" prefix
    base: tuple[str, ...]  # harmless arguments every case starts from (scratch outputs, a tiny dataset)
    allowed: tuple[str, ...] = ()  # regexes of stderr lines besides the error that every case may print


# Lightning's start-up lines of every training (seed, devices, a tip), printed before the data is read.
LIGHTNING_STARTUP = (r"Seed set to \d+$", r"GPU available: ", r"TPU available: ", r"HPU available: ", r"💡 Tip: ")
DATA_REPORT = r"(INFO|WARNING) htr\.data\.\w+: "  # a dataset's split sizes and its counted skip of bad images

ENTRIES = {
    "train": Entry("train.py", "train.py", (*BASELINE, "--data.source", "folder", "--data.root", "{words}", "--data.num_workers", "0",
                                            "--run.dir", "{tmp}/runs", "--run.wandb", "disabled", "--run.resume", "false", "--trainer.fast_dev_run", "true"),
                   (*LIGHTNING_STARTUP, r"Running in `fast_dev_run` mode")),  # the corpus's guard: a case that trains runs one batch
    "evaluate": Entry("evaluate.py", "evaluate.py", ("--out", "{tmp}/report", "--data.source", "folder", "--data.root", "{words}",
                                                     "--splits", "[test]", "--extra_sets", "{}", "--diagnostics", "false", "--progress", "false")),
    "study": Entry("study.py", "study.py", ("--results", "{tmp}/study", "--run_dir", "{tmp}/study_runs", "--seeds", "[0]",
                                            "--arms", '{"baseline": "configs/train/baseline.yaml"}', "--data", '{"source": "folder", "root": "{words}"}', "--report_only", "true")),
    "explore": Entry("explore.py", "explore.py", ("{ckpt}", "--port", "0", "--export_dir", "{tmp}/explore", "--probes", "{missing}.npz", "--data_root", "{words}", "--data_source", "folder")),
    "diagnostics": Entry("-m htr.diagnostics", "python -m htr.diagnostics", ()),
    "synthetic": Entry("-m htr.data.synthetic", "python -m htr.data.synthetic", ()),
    "preview": Entry("-m htr.data.preview", "python -m htr.data.preview", ()),
    "ablation": Entry("-m htr.experiment.ablation", "python -m htr.experiment.ablation", (
        "--results", "{tmp}/ablation", "--data_dir", "{tmp}/ablation_data", "--init", "{ckpt}", "--samples", "8", "--n_val", "4",
        "--eval_sets", '{"test": {"data": {"source": "folder", "root": "{words}"}, "split": "test"}}', "--probes", "null")),
    "fetch_fonts": Entry("-m tools.fetch_fonts", "python -m tools.fetch_fonts", ("--cache", "{tmp}/font_cache")),
}

# Sub-command arguments that would work, so that each case is wrong in one thing only.
EDIT = ["edit", "{ckpt}", "{words}/test/images/0000.png", "--text", "are", "--out", "{tmp}/edit.png"]
REL = ["relevance", "{ckpt}", "{words}/test/images/0000.png", "--text", "are", "--out", "{tmp}/rel.png"]
SHIFT = ["shift", "{ckpt}", "{words}/test/images/0000.png", "--text", "are", "--out", "{tmp}/shift.png"]
GEN = ["generate", "--root", "{tmp}/gen", "--n_train", "0", "--n_val", "0", "--n_test", "0", "--n_test_unseen", "0", "--no_progress"]
SHEET = ["contact-sheet", "--out", "{tmp}/sheet.png", "--n", "2"]
BENCH = ["bench", "-n", "2"]
PREVIEW = ["--source", "folder", "--root", "{words}", "--n", "2", "--out", "{tmp}/preview.png"]
TABLE = ["--table", "true"]


class Case(NamedTuple):
    cli: str  # key of ENTRIES
    argv: list[str]  # after the entry's base arguments
    expected: str  # the error line must contain this
    allowed: tuple[str, ...] = ()  # regexes of further stderr lines this case may print


CORPUS: list[Case] = [
    # train.py: the two tracebacks of issue #25, then each option: wrong type, out of range, missing file.
    Case("train", ["--trainer.callbacks.init_args.settings.num_probes", "0"], "--trainer.callbacks.init_args.settings.num_probes: must be at least 1, got 0"),
    Case("train", ["--data.batch_size", "-3"], "--data.batch_size: must be >= 1, got -3"),
    Case("train", ["--trainer.callbacks.init_args.settings.relevance_window", "0"], "--trainer.callbacks.init_args.settings.relevance_window: must be at least 1"),
    Case("train", ["--trainer.callbacks.init_args.settings.max_shift", "-2"], "--trainer.callbacks.init_args.settings.max_shift: must be at least 1"),
    Case("train", ["--trainer.callbacks.init_args.settings.num_probes", "many"], "--trainer.callbacks.init_args.settings.num_probes: 'many' is not a valid int"),
    Case("train", ["--trainer.callbacks.init_args.figures", "lots"], "--trainer.callbacks.init_args.figures: 'lots' is not a valid int"),
    Case("train", ["--trainer.callbacks.init_args.settings.num_probe", "3"], "unknown option --trainer.callbacks.init_args.settings.num_probe"),
    Case("train", ["--trainer.callbacks.init_args.every_n_epochs", "0"], "--trainer.callbacks.init_args.every_n_epochs: must be >= 1"),
    Case("train", ["--data.batch_size", "x"], "--data.batch_size: 'x' is not a valid int"),
    Case("train", ["--data.batch_size", "0"], "--data.batch_size: must be >= 1, got 0"),
    Case("train", ["--data.eval_batch_size", "0"], "--data.eval_batch_size: must be >= 1, got 0"),
    Case("train", ["--data.num_workers", "-1"], "--data.num_workers: must be >= 0, got -1"),
    Case("train", ["--data.num_workers", "two"], "--data.num_workers: 'two' is not a valid int"),
    Case("train", ["--data.limit_train", "0"], "--data.limit_train: must be >= 1, got 0"),
    Case("train", ["--data.split_fractions", "[0.5, 0.5, 0.5]"], "--data.split_fractions: must be three non-negative numbers summing to 1"),
    Case("train", ["--data.split_fractions", "[a, b, c]"], "--data.split_fractions"),
    Case("train", ["--data.translation", "{p_scale: 2}"], "--data.translation.p_scale: must be in 0..1, got 2"),
    Case("train", ["--data.translation", "{scale: [0.8, 1.5]}"], "--data.translation.scale: need 0 < min <= max <= 1"),
    Case("train", ["--data.translation", "{zoom: 2}"], "--data.translation: Translation.__init__() got an unexpected keyword argument 'zoom'"),
    Case("train", ["--data.synthetic", "{n_train: -1}"], "--data.synthetic: synthetic.n_train must be >= 0, got -1"),
    Case("train", ["--data.synthetic", "{zoom: 2}"], "--data.synthetic: unexpected keyword argument 'zoom'"),
    Case("train", ["--data.charset", "aab"], "--data.charset: charset has duplicate characters"),
    Case("train", ["--data.augmentation", "translat"], "--data.augmentation: 'translat' is not one of none, translate, noise, translate+noise"),
    Case("train", ["--data.seed", "x"], "--data.seed: 'x' is not a valid int"),
    Case("train", ["--data.root", "{missing}"], "missing: dataset folder not found"),
    Case("train", ["--data.source", "iam", "--data.root", "{words}"], "no words.txt"),
    Case("train", ["--data.root", "{flat_words}", "--data.split_files", '{"train": "{missing}.txt", "val": "{missing}.txt"}'], "missing.txt"),
    Case("train", ["--data.root", "{garbage_words}"], "garbage_words: no usable training samples", (DATA_REPORT,)),
    Case("train", ["--model.lr", "0"], "--model.lr: must be > 0, got 0.0"),
    Case("train", ["--model.lr", "fast"], "--model.lr: 'fast' is not a valid float"),
    Case("train", ["--model.warmup_steps", "-1"], "--model.warmup_steps: must be >= 0, got -1"),
    Case("train", ["--model.beam_width", "0"], "--model.beam_width: must be >= 1, got 0"),
    Case("train", ["--model.max_bad_batches", "0"], "--model.max_bad_batches: must be >= 1, got 0"),
    Case("train", ["--model.lstm_units", "0"], "--model.lstm_units: must be >= 1, got 0"),
    Case("train", ["--model.channels", "[4, 8, 8, 8, 0]"], "--model.channels: must be >= 1, got 0"),
    Case("train", ["--model.channels", "[4, 8]"], "--model.channels"),
    Case("train", ["--model.pooling", "avg"], "--model.pooling: 'avg' is not one of max, blur"),
    Case("train", ["--trainer.max_epochs", "x"], "--trainer.max_epochs: 'x' is not a valid int | None"),
    Case("train", ["--trainer.max_epochs", "-5"], "--trainer: `max_epochs` must be a non-negative integer or -1"),
    Case("train", ["--trainer.devices", "0"], "--trainer: `Trainer(devices='0')` value is not a valid input"),
    Case("train", ["--trainer.accelerator", "tpux"], "--trainer: You selected an invalid accelerator name: `accelerator='tpux'`"),
    Case("train", ["--trainer.max_epoch", "1"], "unknown option --trainer.max_epoch (did you mean --trainer.max_epochs?)"),
    Case("train", ["--run.wandb", "offlin"], "--run.wandb: 'offlin' is not one of offline, online, disabled"),
    Case("train", ["--run.resume", "maybe"], "--run.resume: 'maybe' is not a valid bool"),
    Case("train", ["--run.name", "junkresume", "--run.resume", "true"], "junkresume/checkpoints/last.ckpt: not a readable checkpoint"),
    Case("train", ["--seed_everything", "x"], "--seed_everything"),
    Case("train", ["--config", "{missing}.yaml"], "missing.yaml"),
    Case("train", ["--config", "{junk_yaml}"], "--config: not a valid YAML config"),
    # evaluate.py
    Case("evaluate", ["{ckpt}", "--num_probes", "0"], "num_probes: must be at least 1, got 0"),
    Case("evaluate", ["{ckpt}", "--num_probes", "many"], "--num_probes: 'many' is not a valid int"),
    Case("evaluate", ["{ckpt}", "--relevance_window", "0"], "relevance_window: must be at least 1, got 0"),
    Case("evaluate", ["{ckpt}", "--max_shift", "x"], "--max_shift: 'x' is not a valid int"),
    Case("evaluate", ["{ckpt}", "--data.batch_size", "-3"], "--data.batch_size: must be >= 1, got -3"),
    Case("evaluate", ["{ckpt}", "--data.eval_batch_size", "none"], "--data.eval_batch_size: 'none' is not a valid int"),
    Case("evaluate", ["{ckpt}", "--data.source", "iamm"], "--data.source: 'iamm' is not one of synthetic, iam, folder"),
    Case("evaluate", ["{ckpt}", "--data.root", "{missing}"], "missing: dataset folder not found"),
    Case("evaluate", ["{ckpt}", "--device", "cpux"], "--device: 'cpux' is not a device"),
    Case("evaluate", ["{ckpt}", "--extra_sets", '{"x": {"data": {"batch_size": 0}}}'], "--extra_sets.x.data.batch_size: must be >= 1, got 0"),
    Case("evaluate", ["{ckpt}", "--extra_sets", '{"x": {"data": {"zoom": 2}}}'], "--extra_sets.x.data.zoom: unknown setting"),
    Case("evaluate", ["{ckpt}", "--extra_sets", "[1, 2]"], "--extra_sets"),
    Case("evaluate", ["{ckpt}", "--diagnostics", "true", "--probes", "{missing}"], "missing: probe set not found"),
    Case("evaluate", ["{ckpt}", "--diagnostics", "true", "--probes", "{junk_probes}"], "probes.npz: not a readable probe set"),
    Case("evaluate", ["{missing}.ckpt"], "missing.ckpt: checkpoint not found"),
    Case("evaluate", ["{junk_ckpt}"], "junk.ckpt: not a readable checkpoint"),
    Case("evaluate", ["{empty_ckpt}"], "empty.ckpt: not a readable checkpoint"),
    Case("evaluate", ["{tmp}"], "checkpoint not found"),
    Case("evaluate", ["{ckpt}", "--num_probe", "3"], "unknown option --num_probe (did you mean --num_probes?)"),
    # study.py
    Case("study", ["--parallel", "0"], "--parallel: must be >= 1, got 0"),
    Case("study", ["--parallel", "many"], "--parallel: 'many' is not a valid int"),
    Case("study", ["--num_probes", "0"], "num_probes: must be at least 1, got 0"),
    Case("study", ["--seeds", "x"], "--seeds"),
    Case("study", ["--data", '{"source": "folder", "root": "{words}", "batch_size": -3}'], "--data.batch_size: must be >= 1, got -3"),
    Case("study", ["--data", '{"source": "folder", "root": "{words}", "zoom": 2}'], "--data.zoom: unknown setting"),
    Case("study", ["--data", "[1]"], "--data"),
    Case("study", ["--device", "cpux"], "--device: 'cpux' is not a device"),
    Case("study", ["--extra_sets", '{"x": {"data": {"batch_size": 0}}}'], "--extra_sets.x.data.batch_size: must be >= 1, got 0"),
    Case("study", ["--launcher", "slurm"], "--launcher: 'slurm' is not one of local, submitit"),
    Case("study", ["--arms", '{"baseline": "configs/train/nope.yaml"}'], "--arms: arm config not found (baseline: configs/train/nope.yaml)"),
    Case("study", ["--report_only", "false", "--data", '{"source": "folder", "root": "{missing}"}'], "missing: dataset folder not found"),
    Case("study", [], "no run results yet"),
    Case("study", ["--config", "{missing}.yaml"], "missing.yaml"),
    Case("study", ["--config", "{junk_yaml}"], "--config: not a valid YAML config"),
    Case("study", ["--relevance_windows", "2"], "unknown option --relevance_windows (did you mean --relevance_window?)"),
    # explore.py (a bad checkpoint is not an error: the page says why it did not load)
    Case("explore", ["--port", "x"], "--port: invalid int value: 'x'"),
    Case("explore", ["--port", "70000"], "--port: must be in 0..65535, got 70000"),
    Case("explore", ["--workers", "0"], "--workers: must be >= 1, got 0"),
    Case("explore", ["--workers", "many"], "--workers: invalid int value: 'many'"),
    Case("explore", ["--image", "{missing}.png"], "missing.png: image file not found"),
    Case("explore", ["--image", "{garbage_png}"], "0000.png: unreadable image"),
    Case("explore", ["--data_source", "iamm"], "--data_source: 'iamm' is not one of synthetic, iam, folder"),
    Case("explore", ["--host", "no.such.host.invalid"], "cannot listen on no.such.host.invalid"),
    Case("explore", ["--expor_dir", "x"], "unknown option --expor_dir (did you mean --export_dir?)"),
    # python -m htr.diagnostics
    Case("diagnostics", [*EDIT[:2], "{missing}.png", *EDIT[3:]], "missing.png: file not found"),
    Case("diagnostics", [*EDIT[:2], "{garbage_png}", *EDIT[3:]], "0000.png: unreadable image"),
    Case("diagnostics", [EDIT[0], "{missing}.ckpt", *EDIT[2:]], "missing.ckpt: checkpoint not found"),
    Case("diagnostics", [EDIT[0], "{junk_ckpt}", *EDIT[2:]], "junk.ckpt: not a readable checkpoint"),
    Case("diagnostics", [*EDIT, "--set", "1,2,3=0"], "bad edit '1,2,3=0'"),
    Case("diagnostics", [*EDIT[:4], "ar~", *EDIT[5:]], "outside the model's charset"),
    Case("diagnostics", [*EDIT[:-1], "{tmp}/edit.xyz"], "--out: {tmp}/edit.xyz: '.xyz' is not a format for figures"),
    Case("diagnostics", [*EDIT[:-1], "{a_file}/edit.png"], "a_file"),
    Case("diagnostics", [*REL, "--window", "x"], "--window: invalid int value: 'x'"),
    Case("diagnostics", [*REL, "--window", "0"], "--window: must be in 1..32, got 0"),
    Case("diagnostics", [*REL, "--window", "33"], "--window: must be in 1..32, got 33"),
    Case("diagnostics", [*REL, "--stride", "0"], "--stride: must be >= 1, got 0"),
    Case("diagnostics", [*REL, "--vmax", "big"], "--vmax: 'big' is neither a number nor 'auto'"),
    Case("diagnostics", [*REL, "--weights", "flat"], "--weights: 'flat' is not one of uniform, histogram"),
    Case("diagnostics", [*SHIFT, "--max_shift", "-1"], "--max_shift: must be >= 0, got -1"),
    Case("diagnostics", [*SHIFT, "--max_shift", "x"], "--max_shift: invalid int value: 'x'"),
    Case("diagnostics", [*SHIFT, "--max_shif", "3"], "unknown option --max_shif (did you mean --max_shift?)"),
    Case("diagnostics", ["scores", "{ckpt}", "--probes", "{missing}"], "missing: probe set not found"),
    Case("diagnostics", ["scores", "{ckpt}", "--probes", "{junk_probes}"], "probes.npz: not a readable probe set"),
    Case("diagnostics", ["scores", "{ckpt}", "--probes", "{missing}", "--max_shift", "0"], "max_shift: must be at least 1, got 0"),
    Case("diagnostics", ["nonsense"], "'nonsense' is not one of"),
    # python -m htr.data.synthetic: generate, contact-sheet, bench, fonts
    Case("synthetic", [*GEN, "--n_train", "x"], "--n_train: invalid int value: 'x'"),
    Case("synthetic", [*GEN, "--n_train", "-1"], "synthetic.n_train must be >= 0, got -1"),
    Case("synthetic", [*GEN, "--workers", "0"], "--workers: must be >= 1, got 0"),
    Case("synthetic", [*GEN, "--seed", "x"], "--seed: invalid int value: 'x'"),
    Case("synthetic", [*GEN, "--p_connect", "lots"], "--p_connect: invalid float value: 'lots'"),
    Case("synthetic", [*GEN, "--heldout_fonts", "NoSuchHand"], "font 'NoSuchHand' not found"),
    Case("synthetic", [*GEN, "--root", "{a_file}"], "a_file"),
    Case("synthetic", [*GEN, "--n-train", "5"], "unknown option --n-train (did you mean --n_train?)"),
    Case("synthetic", [*SHEET, "--n", "x"], "--n: invalid int value: 'x'"),
    Case("synthetic", [*SHEET, "--n", "0"], "--n: must be >= 2, got 0"),
    Case("synthetic", [*SHEET, "--real_words", "0"], "--real_words: must be >= 1, got 0"),
    Case("synthetic", [*SHEET, "--real", "{missing}"], "missing/labels.tsv"),
    Case("synthetic", [*SHEET, "--real", "{garbage_words}/test"], "0000.png: unreadable image"),
    Case("synthetic", [*SHEET[:2], "{tmp}/sheet.xyz", *SHEET[3:]], "--out: {tmp}/sheet.xyz: '.xyz' is not a format for images"),
    Case("synthetic", [*BENCH[:1], "-n", "x"], "-n: invalid int value: 'x'"),
    Case("synthetic", [*BENCH[:1], "-n", "0"], "-n: must be >= 1, got 0"),
    Case("synthetic", ["fonts", "--heldout_fonts", "NoSuchHand"], "synthetic.heldout_fonts: font 'NoSuchHand' not found"),
    # python -m htr.data.preview
    Case("preview", [*PREVIEW, "--n", "x"], "--n: invalid int value: 'x'"),
    Case("preview", [*PREVIEW, "--n", "0"], "--n: must be >= 1, got 0"),
    Case("preview", [*PREVIEW, "--epoch", "-1"], "--epoch: must be >= 0, got -1"),
    Case("preview", [*PREVIEW, "--seed", "x"], "--seed: invalid int value: 'x'"),
    Case("preview", [*PREVIEW, "--augmentation", "translat"], "--augmentation: 'translat' is not one of"),
    Case("preview", [*PREVIEW, "--source", "iamm"], "--source: 'iamm' is not one of synthetic, iam, folder"),
    Case("preview", [*PREVIEW, "--align", "right"], "--align: 'right' is not one of left, centre"),
    Case("preview", [*PREVIEW, "--root", "{missing}"], "missing: dataset folder not found"),
    Case("preview", [*PREVIEW, "--root", "{garbage_words}"], "empty dataset split", (DATA_REPORT,)),
    Case("preview", [*PREVIEW, "--out", "{tmp}/preview.xyz"], "--out: {tmp}/preview.xyz: '.xyz' is not a format for figures"),
    # python -m htr.experiment.ablation
    Case("ablation", ["--samples", "x"], "--samples: 'x' is not a valid int"),
    Case("ablation", ["--samples", "0"], "--samples: must be >= 1, got 0"),
    Case("ablation", ["--lr", "0"], "--lr: must be > 0, got 0.0"),
    Case("ablation", ["--batch_size", "0"], "--batch_size: must be >= 1, got 0"),
    Case("ablation", ["--num_workers", "-1"], "--num_workers: must be >= 0, got -1"),
    Case("ablation", ["--device", "cpux"], "--device: 'cpux' is not a device"),
    Case("ablation", ["--only", "[nothing]"], "--only: no variant named nothing"),
    Case("ablation", ["--variants", '{"control": {"zoom": 2}}'], "variants.control: unknown keys ['zoom']"),
    Case("ablation", ["--eval_sets", '{"x": {"data": {"batch_size": 0}}}'], "--eval_sets.x.data.batch_size: must be >= 1, got 0"),
    Case("ablation", ["--init", "{missing}.ckpt"], "missing.ckpt: checkpoint not found"),
    Case("ablation", ["--init", "{junk_ckpt}"], "junk.ckpt: not a readable checkpoint"),
    Case("ablation", [*TABLE, "--write_table", "{missing}.md"], "missing.md"),
    Case("ablation", [*TABLE, "--write_table", "{notes_md}"], "--write_table"),
    Case("ablation", ["--config", "{missing}.yaml"], "missing.yaml"),
    Case("ablation", ["--config", "{junk_yaml}"], "--config: not a valid YAML config"),
    # python -m tools.fetch_fonts: only what fails before it touches the vendored fonts
    Case("fetch_fonts", ["--jobs", "x"], "--jobs: invalid int value: 'x'"),
    Case("fetch_fonts", ["--jobs", "0"], "--jobs: must be >= 1, got 0"),
    Case("fetch_fonts", ["--cache", "{a_file}"], "--cache"),
    Case("fetch_fonts", ["--job", "2"], "unknown option --job (did you mean --jobs?)"),
]


def fill(arg: str, paths: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: paths.get(m.group(1), m.group(0)), arg)


def case_id(case: Case) -> str:
    return f"{case.cli}:{' '.join(case.argv)[-60:]}"


def case_key(case: Case) -> tuple[str, ...]:
    return (case.cli, *case.argv)


def check_one_line(case: Case, result: dict[str, Any], paths: dict[str, str]) -> None:
    """Exit 2, no traceback, and stderr is the one error line (besides the lines the case allows)."""
    entry = ENTRIES[case.cli]
    everything = result["stdout"] + result["stderr"]
    assert "Traceback" not in everything, result["stderr"][-3000:]
    assert result["code"] == 2, (result["code"], result["stderr"][-3000:])
    allowed = [re.compile(p) for p in (*entry.allowed, *case.allowed)]
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    errors = [line for line in lines if not any(p.match(line) for p in allowed)]
    assert len(errors) == 1, lines
    assert errors[0].startswith(f"{entry.prog}: error: "), errors[0]
    assert fill(case.expected, paths) in errors[0], errors[0]


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[tuple[str, ...], dict[str, Any]]]:
    """The scratch paths and every case's result, one driver process per entry point."""
    tmp = tmp_path_factory.mktemp("cli")
    paths = make_inputs(tmp)
    results: dict[tuple[str, ...], dict[str, Any]] = {}
    for cli, entry in ENTRIES.items():
        cases = [c for c in CORPUS if c.cli == cli]
        spec = [{"entry": entry.entry, "argv": [fill(a, paths) for a in (*entry.base, *c.argv)]} for c in cases]
        (tmp / f"{cli}.json").write_text(json.dumps(spec))
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "cli_driver.py"), str(tmp / f"{cli}.json"), str(tmp / f"{cli}.out.json")],
                              cwd=ROOT, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        for case, result in zip(cases, json.loads((tmp / f"{cli}.out.json").read_text())):
            results[case_key(case)] = result
    return paths, results


def test_corpus_covers_every_cli() -> None:
    assert {c.cli for c in CORPUS} == set(ENTRIES)
    assert len({case_key(c) for c in CORPUS}) == len(CORPUS)


@pytest.mark.slow
@pytest.mark.parametrize("case", CORPUS, ids=[f"{i:03d}-{case_id(c)}" for i, c in enumerate(CORPUS)])
def test_bad_input_is_one_line_exit_2(case: Case, corpus_results: tuple[dict[str, str], dict[tuple[str, ...], dict[str, Any]]]) -> None:
    paths, results = corpus_results
    check_one_line(case, results[case_key(case)], paths)


# ---- the fast tier: a representative case of each command line, in this process ---------------------
MAINS: dict[str, Callable[[list[str] | None], Any]] = {
    "train": train_main, "evaluate": evaluate_main, "study": study_main, "explore": explore_main, "diagnostics": diagnostics_main,
    "synthetic": synthetic_main, "preview": preview_main, "ablation": ablation_main, "fetch_fonts": fetch_fonts_main,
}
QUICK = [
    CORPUS[0], CORPUS[1],  # the two tracebacks of issue #25
    *(next(c for c in CORPUS if c.cli == cli and c.expected.startswith(start)) for cli, start in [
        ("train", "--data.translation.p_scale"), ("evaluate", "junk.ckpt"), ("evaluate", "--extra_sets.x.data.batch_size"),
        ("study", "--parallel: must"), ("explore", "--port: must"), ("diagnostics", "0000.png: unreadable"), ("diagnostics", "junk.ckpt"),
        ("synthetic", "synthetic.n_train"), ("synthetic", "--n: must be >= 2"), ("preview", "--n: must"), ("ablation", "--only"),
        ("fetch_fonts", "--jobs: must"),
    ]),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_inputs(tmp_path_factory.mktemp("cli_quick"))


def run_in_process(cli: str, argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, list[str]]:
    """``run_main`` of the entry point as its ``__main__`` calls it: (exit code, non-empty stderr lines)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run_main(MAINS[cli], argv, prog=ENTRIES[cli].prog)
    return stop.value.code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("case", QUICK, ids=[case_id(c) for c in QUICK])
def test_bad_input_in_process(case: Case, inputs: dict[str, str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    argv = [fill(a, inputs) for a in (*ENTRIES[case.cli].base, *case.argv)]
    code, err = run_in_process(case.cli, argv, capsys)
    check_one_line(case, {"code": code, "stdout": "", "stderr": "\n".join(err)}, inputs)


# ---- run_main itself ---------------------------------------------------------------------------------
def _raise(err: BaseException) -> Callable[[list[str] | None], int]:
    def main(argv: list[str] | None) -> int:
        raise err

    return main


@pytest.mark.parametrize(("err", "code", "line"), [
    (ConfigError("data.batch_size", "must be >= 1, got -3"), 2, "prog: error: --data.batch_size: must be >= 1, got -3"),
    (UsageError("two\nlines"), 2, "prog: error: two lines"),
    (FileNotFoundError(2, "No such file or directory", "x.yaml"), 2, "prog: error: x.yaml: No such file or directory"),
    (PermissionError(13, "Permission denied", "/root/x"), 2, "prog: error: /root/x: Permission denied"),
    (KeyboardInterrupt(), 130, "prog: interrupted"),
])
def test_run_main_makes_user_errors_one_line(err: BaseException, code: int, line: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        run_main(_raise(err), [], prog="prog")
    assert stop.value.code == code and capsys.readouterr().err == line + "\n"


def test_run_main_keeps_a_bugs_traceback_and_an_errors_own_exit_code() -> None:
    with pytest.raises(ZeroDivisionError):
        run_main(_raise(ZeroDivisionError("a bug")), [], prog="prog")

    class Diverged(HTRError):
        exit_code = 3

    with pytest.raises(SystemExit) as stop:
        run_main(_raise(Diverged("diverged")), [], prog="prog")
    assert stop.value.code == 3
    with pytest.raises(SystemExit) as stop:
        run_main(lambda argv: None, [], prog="prog")
    assert stop.value.code == 0


def test_every_project_exception_is_an_htr_error() -> None:
    """Each exception class the package defines derives from HTRError (its str() is the user's line)."""
    import importlib
    import pkgutil

    import htr

    classes = set()
    for info in pkgutil.walk_packages(htr.__path__, "htr."):
        module = importlib.import_module(info.name)
        classes |= {v for v in vars(module).values() if isinstance(v, type) and issubclass(v, BaseException) and v.__module__ == info.name}
    assert classes and all(issubclass(c, HTRError) for c in classes), sorted(c.__name__ for c in classes if not issubclass(c, HTRError))


# ---- what was here before: parse errors in one line, entry points wired -----------------------------
PARSE_CASES = [
    ("train", [*BASELINE, "--trainer.max_epoch", "1"], "unknown option --trainer.max_epoch (did you mean --trainer.max_epochs?)"),
    ("train", [*BASELINE, "--model.pooling", "avg"], "--model.pooling: 'avg' is not one of max, blur"),
    ("evaluate", ["a.ckpt", "--num_probe", "3"], "unknown option --num_probe (did you mean --num_probes?)"),
    ("study", ["--num_probes", "many"], "--num_probes: 'many' is not a valid int"),
    ("diagnostics", ["relevance", "a.ckpt", "a.png", "--text", "a", "--weights", "flat"], "--weights: 'flat' is not one of uniform, histogram"),
    ("synthetic", ["fonts", "--heldout_fonts", "NoSuchHand"], "synthetic.heldout_fonts: font 'NoSuchHand' not found"),
]


@pytest.mark.parametrize(("cli", "args", "expected"), PARSE_CASES, ids=[c[2][:40] for c in PARSE_CASES])
def test_bad_option_is_one_line_exit_2(cli: str, args: list[str], expected: str, capsys: pytest.CaptureFixture) -> None:
    code, err = run_in_process(cli, args, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"{ENTRIES[cli].prog}: error: {expected}"), err[0]


def test_a_config_file_typo_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epoch: 1\n")
    code, err = run_in_process("train", [*BASELINE, "--config", str(bad)], capsys)
    assert code == 2 and err == ["train.py: error: unknown key trainer.max_epoch (did you mean trainer.max_epochs?) (see --help)"]


def test_long_options_are_not_matched_by_prefix(capsys: pytest.CaptureFixture) -> None:
    # --num_prob used to be taken as --num_probes; --max_epochs must be spelled out too.
    code, err = run_in_process("evaluate", ["a.ckpt", "--num_prob", "3"], capsys)
    assert code == 2 and "unknown option --num_prob " in err[0]


def test_old_hyphen_spelling_of_max_shift_still_works(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # It fails on the missing image (exit 2), not on the option.
    code, err = run_in_process("diagnostics", ["shift", "a.ckpt", str(tmp_path / "none.png"), "--text", "a", "--max-shift", "3"], capsys)
    assert code == 2 and "none.png" in err[0] and "option" not in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_entry_point_prints_no_traceback_or_usage(script: str) -> None:
    """A real process (not the driver): one line, exit 2."""
    args = [*BASELINE, "--data.augmentation", "translat"] if script == "train.py" else ["a.ckpt", "--splits", "[test]", "--num-probes", "3"]
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "study.py", "explore.py"])
def test_entry_point_help(script: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The thin entry points run their main (in process: the fast tier's check that they import and parse)."""
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    assert stop.value.code == 0 and "usage:" in capsys.readouterr().out.lower()


def test_nested_setting_is_named_in_full() -> None:
    """An error of a class nested in the config names the setting as the command line spells it."""
    from jsonargparse import Namespace as NS

    from htr.train.cli import named_in_full

    config = NS(data=NS(batch_size=-3), trainer=NS(callbacks=[NS(class_path="x", init_args=NS(settings=NS(num_probes=0)))]))
    assert str(named_in_full(HTRError("num_probes: must be at least 1, got 0"), config)) == "--trainer.callbacks.init_args.settings.num_probes: must be at least 1, got 0"
    assert str(named_in_full(ConfigError("data.batch_size", "must be >= 1"), config)) == "--data.batch_size: must be >= 1"
    assert str(named_in_full(HTRError("x: no such setting"), config)) == "x: no such setting"
