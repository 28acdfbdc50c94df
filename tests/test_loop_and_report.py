"""Diagnostics in the loop (callback -> PNG + W&B offline) and the evaluate.py comparison report."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import chromium_dom, chromium_or_skip, train_args
from htr.experiment.evaluate import main as evaluate_main
from htr.model.module import load_checkpoint
from htr.provenance import git_commit
from htr.text import error_counts
from htr.train.cli import main as train_main
from wandb_offline import latest_offline_run, read_artifacts, read_history, read_run

ROOT = Path(__file__).resolve().parent.parent
REAL_WORDS = [line.split("\t")[1] for line in (ROOT / "data" / "real-words" / "labels.tsv").read_text().splitlines()]


def tiny_run(tmp_path: Path, data_root: Path, name: str, config: str, *extra: str) -> Path:
    code = train_main(train_args(tmp_path, data_root, "--run.name", name, "--trainer.max_epochs", "1", *extra, config=config))
    assert code == 0
    return tmp_path / "runs" / name


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from conftest import WORDS, write_folder_dataset

    tmp = tmp_path_factory.mktemp("loop")
    data = write_folder_dataset(tmp / "words", WORDS, per_word=2, splits=("train", "val", "test", "test_unseen"))
    base = tiny_run(tmp, data, "base", "baseline", "--run.wandb", "offline", "--run.test_splits", "[test, test_unseen]", "--run.group", "loop-test")
    aug = tiny_run(tmp, data, "aug", "augmented", "--run.wandb", "disabled")
    return data, base, aug


def test_callback_writes_pngs_scores_and_wandb_media(two_runs: tuple[Path, Path, Path]) -> None:
    _, base, _ = two_runs
    diag = base / "diagnostics"
    assert (diag / "probes.npz").is_file() and (diag / "probes.json").is_file()
    epoch = diag / "epoch_000"
    pngs = sorted(p.name for p in epoch.glob("*.png"))
    assert "relevance_00.png" in pngs and "shift_00.png" in pngs
    scores = json.loads((epoch / "scores.json").read_text())
    # acc@shift0 is the share of probes read right as they are, as the per-probe rows say.
    read_right = [row["recognised"] == row["text"] for row in scores["probes"]]
    assert scores["scores"]["acc@shift0"] == pytest.approx(sum(read_right) / len(read_right)) and "periodicity@4" in scores["scores"]
    assert len(scores["probes"]) == len(json.loads((diag / "probes.json").read_text())["ids"])
    # The test split run at the end of training is diagnosed too.
    assert (diag / "test" / "scores.json").is_file()

    run = latest_offline_run(base)
    keys = set().union(*read_history(run))
    assert "off_ink_evidence" in scores["scores"]  # NaN (not logged) when an untrained map has no positive evidence
    for key in ("diag/acc@shift0", "diag/acc_drop@8plus", "diag/periodicity@4", "diag/cer@specks", "diag/relevance", "diag/shift", "diag/probes", "val/cer", "test/cer"):
        assert any(k == key or k.startswith(key + "/") for k in keys), key  # media are nested records
    media = list((run / "files" / "media").rglob("*"))
    assert any(p.suffix == ".png" and "relevance" in p.name for p in media)
    assert any(p.suffix == ".png" and "shift" in p.name for p in media)
    assert any(p.name.endswith(".table.json") for p in media)


def test_wandb_run_groups_and_lines_up_with_other_runs(two_runs: tuple[Path, Path, Path]) -> None:
    _, base, _ = two_runs
    run = latest_offline_run(base)
    info = read_run(run)
    # Grouping and filtering in the W&B UI with no manual work.
    assert info["name"] == "base" and info["group"] == "loop-test" and info["job_type"] == "base"
    assert set(info["tags"]) == {"augmentation:none", "pooling:max", "seed:0"}
    config = info["config"]
    assert config["trainer"]["max_epochs"] == 1 and config["seed_everything"] == 0 and config["run"]["name"] == "base"
    assert config["data"]["augmentation"] == "none" and config["model"]["pooling"] == "max"
    assert config["git_commit"].split("+")[0] == git_commit().split("+")[0] != "unknown" and info["exit_code"] == 0

    rows = read_history(run)
    keys = set().union(*rows)
    # One key prefix per tested split: test_unseen no longer overwrites test.
    metrics = json.loads((base / "metrics.json").read_text())
    for split in ("test", "test_unseen"):
        logged = [r[f"{split}/cer"] for r in rows if f"{split}/cer" in r]
        assert logged == [pytest.approx(metrics[split]["cer"])], split
    # 4 steps < log_every_n_steps: no per-step point, but the epoch's mean loss is there.
    assert "train/epoch_loss" in keys and "train/loss" not in keys
    # W&B-native panels: line plots of the shift curves and a probe table with images.
    for key in ("diag/shift_curve_table", "diag/accuracy_vs_shift_table", "diag/probes"):
        assert any(k.startswith(key + "/") for k in keys), key
    assert any(k.endswith("visualize/diag/shift_curve") for k in config) and any(k.endswith("visualize/diag/accuracy_vs_shift") for k in config)
    # The probe table's rows (with their images) live in a run_table artifact.
    staged = [a["files"] for a in read_artifacts(run) if a["type"] == "run_table" and any(p.endswith("probes.table.json") for p in a["files"])]
    assert staged
    table_file = next(f for p, f in staged[-1].items() if p.endswith(".table.json"))
    table = json.loads(Path(table_file).read_text())
    assert table["columns"][:5] == ["image", "id", "text", "recognised", "score"]
    probes = json.loads((base / "diagnostics" / "probes.json").read_text())
    assert [row[2] for row in table["data"]] == probes["texts"]
    assert all(row[0]["_type"] == "image-file" for row in table["data"])
    assert any(p.startswith("media/images/") and p.endswith(".png") for p in staged[-1])
    # Diagnosed once per checkpoint: after the one epoch, then once at test (not once per split).
    assert sum("diag/acc@shift0" in r for r in rows) == 2

    # The checkpoint knows its training run; a report reads it back.
    module = load_checkpoint(base / "checkpoints" / "last.ckpt")
    assert module.provenance["wandb_id"] == info["id"] and module.provenance["run_name"] == "base"
    assert module.provenance["augmentation"] == "none" and module.provenance["epochs"] == 1


def test_probe_set_is_reused_when_the_run_resumes(two_runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, base, _ = two_runs
    before = (base / "diagnostics" / "probes.json").read_text()
    shutil.copytree(base, tmp_path / "runs" / "base")
    tiny_run(tmp_path, data, "base", "baseline", "--run.wandb", "disabled", "--trainer.max_epochs", "2")
    assert (tmp_path / "runs" / "base" / "diagnostics" / "probes.json").read_text() == before
    assert (tmp_path / "runs" / "base" / "diagnostics" / "epoch_001" / "scores.json").is_file()


def test_evaluate_writes_the_comparison_report(two_runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, base, aug = two_runs
    out = tmp_path / "report"
    code = evaluate_main([
        str(base / "checkpoints" / "last.ckpt"), str(aug / "checkpoints" / "last.ckpt"),
        "--data.source", "folder", "--data.root", str(data), "--data.num_workers", "0",
        "--splits", "[test]", "--out", str(out), "--progress", "false",
        "--probes", str(base / "diagnostics" / "probes.npz"), "--relevance_probes", "2", "--relevance_window", "4",
        "--wandb", "offline",
    ])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"base", "aug"}
    for name, run in (("base", base), ("aug", aug)):
        # One epoch: last.ckpt is the best checkpoint, so evaluate.py must agree with train.py's test.
        trained = json.loads((run / "metrics.json").read_text())["test"]
        m = metrics[name]
        assert m["test"]["cer"] == pytest.approx(trained["cer"]) and m["test"]["n"] == 32
        assert "acc@shift16" in m["diagnostics"] and len(m["probes"]) > 0
        # The real-handwriting sets are read in every evaluation, word by word.
        assert m["real_handwriting"]["n"] == 300 and m["real_words"]["n"] == 8
        assert m["real_words"]["read"] == sum(r == t for r, t in zip(m["readings"]["real_words"], REAL_WORDS))
        assert len(m["readings"]["real_handwriting"]) == 300
    for png in ("relevance_grid", "accuracy_vs_shift", "shift_curves", "deletion_curves", "worst_read_real_handwriting", "worst_read_real_words"):
        assert (out / f"{png}.png").stat().st_size > 1000
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 6 and "<th></th><th>base</th><th>aug</th>" in page
    assert "real_handwriting (300 words)" in page
    # Each model's character errors on each real set; their counts add up to its CER's numerator.
    assert "<h2>Character errors" in page and "<h3>real_words</h3>" in page
    for m in metrics.values():
        edits = error_counts(REAL_WORDS, m["readings"]["real_words"])
        assert sum(edits.values()) == round(m["real_words"]["cer"] * sum(map(len, REAL_WORDS)))

    # Provenance: which checkpoints, trained how, by which run; and the evaluation's settings.
    base_run = read_run(latest_offline_run(base))
    assert metrics["base"]["provenance"]["wandb_id"] == base_run["id"] and metrics["aug"]["provenance"]["run_name"] == "aug"
    for text in (str(base / "checkpoints" / "last.ckpt"), "translate+noise", git_commit().split("+")[0], base_run["id"], "4x4 windows every 4 px", "0..16 px"):
        assert html.escape(text) in page, text
    # README units (percent), and the difference column against the first model.
    cer = {n: metrics[n]["test"]["cer"] for n in metrics}
    assert f"{100 * cer['base']:.2f} %" in page and f"{100 * (cer['aug'] - cer['base']):.2f} points" in page
    assert "<th>aug − base</th>" in page

    # One W&B comparison run: the recognition table, shortcut scores, figures, the models' runs.
    compare = latest_offline_run(out)
    info = read_run(compare)
    assert info["job_type"] == "evaluation" and info["config"]["models"]["base"]["wandb_id"] == base_run["id"]
    keys = set().union(*read_history(compare))
    for key in ("report/recognition", "report/shortcut_scores", "report/models", "report/deletion_curves", "report/relevance_grid"):
        assert any(k.startswith(key + "/") for k in keys), key
    staged = [a["files"] for a in read_artifacts(compare) if any(p.endswith("recognition.table.json") for p in a["files"])]
    table = json.loads(Path(next(f for p, f in staged[-1].items() if p.endswith(".table.json"))).read_text())
    rows = {(r[0], r[1]): r for r in table["data"]}
    assert rows[("base", "test")][2] == pytest.approx(cer["base"]) and rows[("base", "test")][6] == "base"
    assert rows[("base", "test")][7] == base_run["id"] and rows[("aug", "test")][6] == "aug"


@pytest.mark.slow
def test_report_images_load_in_headless_chromium(two_runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    data, base, aug = two_runs
    out = tmp_path / "report"
    assert evaluate_main([
        str(base / "checkpoints" / "last.ckpt"), str(aug / "checkpoints" / "last.ckpt"),
        "--data.source", "folder", "--data.root", str(data), "--data.num_workers", "0", "--splits", "[test]",
        "--out", str(out), "--progress", "false", "--relevance_probes", "1", "--relevance_window", "8",
    ]) == 0
    dom = chromium_dom(chromium, (out / "index.html").as_uri(), tmp_path / "chrome", "1400,2400", screenshot=out / "screenshot.png")
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, "the report's load check did not run in Chromium"
    assert int(total.group(1)) == 6 and loaded.group(1) == total.group(1)  # 4 figures + 2 worst-read strips
    # At 1400 px no number cell wraps and nothing runs off the page.
    assert 'data-wrapped-cells="0"' in dom and 'data-overflow-x="false"' in dom
    shot = out / "screenshot.png"
    assert shot.is_file() and shot.stat().st_size > 10_000
