"""Every YAML under configs/ parses and validates through the parser that consumes it, and a typo'd
key in any of them fails: train configs through train.py's LightningCLI (model, data and callbacks
built, no Trainer, no W&B run), study configs through study.py's parser and checks (each arm's
training command through train.py's parser too), the ablation config through its runner's."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT
from htr.errors import HTRError
from htr.experiment import ablation, study
from htr.train.cli import ParseOnlyCLI, make_cli

CONFIGS = ROOT / "configs"
STUDY = CONFIGS / "study" / "study.yaml"
# Study overlays, documented as `--config configs/study/study.yaml --config <overlay>`.
OVERLAYS = {"study-iam.yaml", "study-short.yaml", "study-shapes-budget.yaml"}
# Keys whose children are names the config chooses (arms, sets, variants, runs), not settings: a changed name is no typo.
NAMED = {"arms", "extra_sets", "eval_sets", "variants", "trained"}


def check_train(args: list[str]) -> None:
    make_cli(args, ParseOnlyCLI)


def check_study(argv: list[str]) -> None:
    cfg = study.build_parser().parse_args(argv)
    study.check_config(cfg)
    for arm, path in cfg.arms.items():  # each arm's training command as the study runs it
        assert (ROOT / path).is_file(), f"arms.{arm}: {path} not found"
        check_train(study.train_command(cfg, study.PlannedRun(arm, 0)))


def check_ablation(path: Path) -> None:
    cfg = ablation.build_parser().parse_args(["--config", str(path)])
    ablation.check_data_settings(cfg)
    for name in cfg.variants:
        recipe = ablation.variant_settings(cfg, name)
        assert (ROOT / recipe["init"]).is_file(), f"variants.{name}.init: {recipe['init']} not found"


def check_config(path: Path) -> None:
    """Parse and validate ``path`` as its consumer does (run from the repository root, like the commands)."""
    if path.name.startswith("ablation"):
        check_ablation(path)
    elif path.parent.name == "train":
        check_train(["--config", str(path)])  # common.yaml is read first anyway; given again, it is checked as it stands at `path`
    elif path.parent.name == "study":
        check_study(["--config", str(STUDY), "--config", str(path)] if path.name in OVERLAYS else ["--config", str(path)])
    else:
        pytest.fail(f"{path.relative_to(ROOT)}: no parser consumes configs here (configs/train/, configs/study/)")


ALL = sorted(CONFIGS.rglob("*.yaml"))


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(CONFIGS)) for p in ALL])
def test_every_config_parses_through_its_consumer(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # config paths (common.yaml, arm configs, data roots) are relative to the root
    check_config(path)


def setting_keys(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Key paths of every setting of a YAML tree (list items by index), the names of NAMED maps left out."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not (path and path[-1] in NAMED):
                yield (*path, key)
            yield from setting_keys(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from setting_keys(value, (*path, i))


def with_typo(tree: Any, keys: tuple[Any, ...]) -> Any:
    """A copy of ``tree`` with the last key of ``keys`` misspelled."""
    out = copy.deepcopy(tree)
    node = out
    for key in keys[:-1]:
        node = node[key]
    node[f"{keys[-1]}x"] = node.pop(keys[-1])
    return out


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(CONFIGS)) for p in ALL])
def test_a_typo_in_any_config_fails(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each setting of the config misspelled in turn: its consumer refuses it, naming the key."""
    monkeypatch.chdir(ROOT)
    tree = yaml.safe_load(path.read_text())
    bad = tmp_path / path.relative_to(ROOT)  # same folder and name: consumed the same way
    bad.parent.mkdir(parents=True)
    accepted = []
    for keys in setting_keys(tree):
        bad.write_text(yaml.safe_dump(with_typo(tree, keys)))
        try:
            check_config(bad)
        except (HTRError, AssertionError) as err:
            if f"{keys[-1]}x" in str(err):
                continue
        accepted.append(".".join(map(str, keys)))
    assert not accepted, f"{path.relative_to(ROOT)}: a typo in these settings was not refused by name: {accepted}"
