"""The study report from the committed per-run results: README's table, units, definitions, no wrapped cells."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import chromium_dom, chromium_or_skip
from htr.experiment.study import build_parser
from htr.experiment.study_report import HEADLINE, README_COLUMNS, aggregate, markdown_table, write_study_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"


def readme_table(text: str, header_start: str) -> list[str]:
    """The Markdown table of README.md whose header row starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return lines[start:end]


@pytest.fixture(scope="module")
def study_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("study") / "results"
    shutil.copytree(RESULTS / "runs", out / "runs")
    for f in ("probes.npz", "probes.json"):
        shutil.copy(RESULTS / f, out / f)
    cfg = build_parser().parse_args(["--config", str(ROOT / "configs" / "study.yaml"), "--results", str(out), "--report_only", "true"])
    table = aggregate(cfg)
    write_study_report(cfg, table)
    return out, table


def test_readme_quotes_the_study_table_as_the_report_makes_it(study_out: tuple[Path, dict]) -> None:
    out, table = study_out
    made = markdown_table(table).splitlines()
    assert readme_table((ROOT / "README.md").read_text(), "| arm (seeds) |") == made
    assert made[0].split(" | ")[1:] == [HEADLINE[k].header for k in README_COLUMNS[:-1]] + [HEADLINE[README_COLUMNS[-1]].header + " |"]
    assert "\n".join(made) in (out / "README.md").read_text()


def test_study_page_has_units_difference_and_definitions(study_out: tuple[Path, dict]) -> None:
    out, table = study_out
    page = (out / "index.html").read_text()
    assert "<th>augmented − baseline</th>" in page and "<th>definition</th>" in page
    assert "<dt>relevance</dt><dd>2x2 windows every 2 px, first 4 probes</dd>" in page and "<dd>0, 1, 2</dd>" in page
    for col in HEADLINE.values():
        assert col.definition.replace("'", "&#x27;") in page, col.header
    mean, sd, n = table["baseline"]["test/cer"]  # CER: 2 decimals; no sd until a second seed exists
    cell = f"{100 * mean:.2f}" + (f" ± {100 * sd:.2f}" if n >= 2 else "")
    assert "<td>CER test (%)</td>" in page and f"<td>{cell}</td>" in page
    delta = table["augmented"]["diag/acc_drop@8plus"][0] - table["baseline"]["diag/acc_drop@8plus"][0]
    assert f"<td>{100 * delta:.1f} points</td>" in page
    # Cells never wrap (CSS), except prose columns marked wrap.
    assert re.search(r"td\{white-space:nowrap\}", page)
    assert all("±" not in cell for cell in re.findall(r'<td class="wrap">(.*?)</td>', page))


@pytest.mark.slow
def test_study_page_has_no_wrapped_cells_at_1400_px(study_out: tuple[Path, dict], tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    out, _ = study_out
    dom = chromium_dom(chromium, (out / "index.html").as_uri(), tmp_path / "chrome", "1400,3000", screenshot=out / "screenshot.png")
    checked = re.search(r'data-cells-checked="(\d+)"', dom)
    wrapped = re.search(r'data-wrapped-cells="(\d+)"', dom)
    assert checked and wrapped, "the page's wrap check did not run in Chromium"
    assert int(checked.group(1)) > 100 and wrapped.group(1) == "0"
    assert 'data-overflow-x="false"' in dom  # and nothing runs off the right edge
    shot = out / "screenshot.png"
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_report_flags_exactly_the_runs_that_had_not_converged(study_out: tuple[Path, dict]) -> None:
    from htr.callbacks import still_falling

    out, _ = study_out
    runs = {f.stem: json.loads(f.read_text())["training"] for f in (out / "runs").glob("*.json")}
    # The stored flag is the rule applied to the stored history.
    assert all(t["still_falling"] == still_falling(t["val_cer_history"]) for t in runs.values())
    flagged = {name for name, t in runs.items() if t["still_falling"]}
    text = (out / "README.md").read_text()
    if flagged:
        line = next(x for x in text.splitlines() if x.startswith("Not converged"))
        assert set(line.split(": ", 1)[1].rstrip(".").split(", ")) == flagged
    else:
        assert "Every run converged" in text
    rows = [x for x in text.splitlines() if x.startswith("| ") and "-s" in x.split(" | ")[0]]
    assert sum("NO: val CER still falling" in r for r in rows) == len(flagged)
    # Each run's training row says where it trained (runs of one study may use different machines).
    for name, t in runs.items():
        assert any(r.startswith(f"| {name} | ") and f" | {t['device']} | " in r for r in rows), name


def test_training_time_is_averaged_only_over_runs_of_one_device(study_out: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = study_out
    shutil.copytree(out, tmp_path / "results")
    runs = sorted((tmp_path / "results" / "runs").glob("baseline-s*.json"))
    assert len(runs) >= 2, "needs two baseline runs"
    for i, f in enumerate(runs):  # baseline: two devices; every other arm keeps its own
        record = json.loads(f.read_text())
        record["training"]["device"] = "cuda:0 (test)" if i == 0 else "cpu (test)"
        f.write_text(json.dumps(record))
    cfg = build_parser().parse_args(["--config", str(ROOT / "configs" / "study.yaml"), "--results", str(tmp_path / "results"), "--report_only", "true"])
    table = aggregate(cfg)
    assert "training/wall_time_s" not in table["baseline"]
    for arm, row in table.items():
        devices = {json.loads(f.read_text())["training"]["device"] for f in (tmp_path / "results" / "runs").glob(f"{arm}-s*.json")}
        assert ("training/wall_time_s" in row) == (len(devices) == 1), (arm, devices)
    write_study_report(cfg, table)
    _, all_numbers = [x for x in (tmp_path / "results" / "README.md").read_text().splitlines() if x.startswith("| baseline (")][:2]
    assert all_numbers.endswith(" | – |")  # the "All numbers" table's last column: training time
