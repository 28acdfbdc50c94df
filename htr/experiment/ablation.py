"""Generator and augmentation ablations: one change at a time, same budget, same seed.

An ablation fine-tunes one starting checkpoint (a model that already reads: the shipped pair)
for a short, fixed budget on training data made by one generator or augmentation variant,
then measures the result on fixed evaluation sets (the in-font test, the held-out font
families, the real-handwriting sets). The control variant is today's generator with no
change, fine-tuned identically, so each variant's effect is its difference from the control
at the same number of samples, learning rate and seed. Each variant writes
``<results>/<variant>.json``; a variant with results is skipped, so an interrupted ablation
resumes where it stopped. ``--table true`` prints the Markdown table of what exists.

Each variant is ``{synthetic: {SyntheticConfig overrides}, augmentation: ..., init: ...}``
over the top-level ``synthetic`` and ``translation`` (a base generator that stays fixed when the
code's defaults move on); its training data is generated into ``<data_dir>/<fingerprint>/``
(train and val only), so variants with the same generator settings share one set. A variant's
``seed`` changes only the fine-tuning (batch order, augmentation draws: a rerun of another
variant with it measures the table's noise); ``synthetic: {seed: N}`` generates fresh writers and
words. Each result records the digest of the weights it started from (``init_weights``): when
an ``init`` path has been retrained since, a new variant is not measured against results of the
old model (the runner stops and says so).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from htr.argparsing import ArgumentParser
from htr.data.datamodule import WordDataModule
from htr.diagnostics.scorer import CRNNScorer
from htr.diagnostics.settings import DiagnosticsSettings
from htr.errors import ConfigError, UsageError, at_least, positive, run_main
from htr.experiment.evaluate import check_extra_sets, eval_data, evaluate_extra_sets, resolve_device
from htr.experiment.figures import markdown_rows
from htr.io import atomic_write_bytes, write_json
from htr.model.module import load_checkpoint, read_checkpoint
from htr.provenance import weights_digest

log = logging.getLogger("htr.ablation")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m htr.experiment.ablation", description=__doc__)
    p.add_argument("--config", action="config")
    p.add_argument("--variants", type=dict[str, dict[str, Any]], default={"control": {}}, help="name: {synthetic: {...}, augmentation: ..., init: ...}")
    p.add_argument("--init", type=str, default="checkpoints/baseline.ckpt", help="checkpoint every variant starts from (a variant may set its own)")
    p.add_argument("--augmentation", type=str, default="none", help="training augmentation (a variant may set its own)")
    p.add_argument("--synthetic", type=dict[str, Any], default={}, help="SyntheticConfig overrides under every variant's own (e.g. a fixed base generator)")
    p.add_argument("--translation", type=dict[str, Any], default={}, help="Translation overrides under every variant's own")
    p.add_argument("--samples", type=int, default=40000, help="training words seen (one pass over a set of this size)")
    p.add_argument("--n_val", type=int, default=300, help="validation words generated with each variant")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (warm-up, then cosine to 2 %)")
    p.add_argument("--warmup_steps", type=int, default=50)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="seed of the fine-tuning and of the generated data (a variant may set its own: seed, synthetic.seed)")
    p.add_argument("--num_workers", type=int, default=1)
    p.add_argument("--device", type=str, default="cpu", help="cpu | cuda | auto: where each variant trains and is evaluated")
    p.add_argument("--data_dir", type=str, default="data/synthetic-ablation")
    p.add_argument(
        "--eval_sets", type=dict[str, dict[str, Any]],
        default={
            "test": {"data": {"source": "synthetic", "root": "data/synthetic"}, "split": "test"},
            "test_unseen": {"data": {"source": "synthetic", "root": "data/synthetic"}, "split": "test_unseen"},
        },
        help="name: {data: {WordDataModule settings}, split: name}",
    )
    p.add_argument(
        "--probes", type=dict[str, Any] | None, default={"source": "synthetic", "root": "data/synthetic"},
        help="WordDataModule settings whose val split gives 64 probe words for the shift and specks diagnostics (null: none)",
    )
    p.add_argument("--results", type=str, default="docs/results/ablations")
    p.add_argument("--only", type=list[str] | None, default=None, help="run only these variants, in this order")
    p.add_argument("--table", type=bool, default=False, help="print the Markdown table of the results that exist, run nothing")
    p.add_argument("--write_table", type=str | None, default=None, help="also put the table between the '<!-- ablation table -->' markers of this Markdown file (e.g. data/README.md)")
    return p


class StepLog(pl.Callback):
    """A log line every ``every`` steps (step, loss, samples/s): the runner has no progress bar."""

    def __init__(self, every: int = 100) -> None:
        self.every = every
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step % self.every == 0:
            loss = trainer.callback_metrics.get("train/loss")
            rate = step * len(batch["text"]) / max(1e-9, time.perf_counter() - self.start)
            log.info("step %d of %d, loss %.3f, %.0f samples/s", step, trainer.estimated_stepping_batches, float(loss) if loss is not None else float("nan"), rate)


def variant_settings(cfg: Any, name: str) -> dict[str, Any]:
    """The whole recipe of one variant: the defaults of ``cfg`` with the variant's own keys over them."""
    spec = dict(cfg.variants[name] or {})
    unknown = set(spec) - {"synthetic", "augmentation", "translation", "init", "seed", "description", "against"}
    if unknown:
        raise ValueError(f"variants.{name}: unknown keys {sorted(unknown)}; use synthetic, augmentation, translation, init, seed, description, against")
    if spec.get("against", "control") not in cfg.variants:
        raise ValueError(f"variants.{name}.against: no variant named {spec['against']!r}")
    if not isinstance(spec.get("seed", 0), int) or isinstance(spec.get("seed"), bool):
        raise ValueError(f"variants.{name}.seed: {spec['seed']!r} is not a whole number (the fine-tuning's seed)")
    if not isinstance(spec.get("description", ""), str):  # the config reader takes 'a: b' in a quoted string as a mapping
        raise ValueError(f"variants.{name}.description: {spec['description']!r} is not text; write it without ': ' (a colon and a space read as a key)")
    return {
        "synthetic": {**cfg.synthetic, **(spec.get("synthetic") or {})},
        "augmentation": spec.get("augmentation", cfg.augmentation),
        "translation": {**cfg.translation, **(spec.get("translation") or {})},
        "init": spec.get("init", cfg.init),
        "description": spec.get("description", ""),
        "against": spec.get("against", "control"),  # the variant its difference is taken from
        # The fine-tuning's seed (batch order, augmentation draws); the data's is synthetic.seed.
        "samples": cfg.samples, "lr": cfg.lr, "warmup_steps": cfg.warmup_steps, "batch_size": cfg.batch_size, "seed": spec.get("seed", cfg.seed),
    }


def training_data(cfg: Any, recipe: dict[str, Any], charset: str, align: str) -> WordDataModule:
    """The variant's generated train/val set (shared by variants with the same generator settings);
    generated with ``seed`` unless the variant's ``synthetic`` sets its own (fresh writers and words)."""
    gen = {"seed": cfg.seed, **recipe["synthetic"], "n_train": cfg.samples, "n_val": cfg.n_val, "n_test": 0, "n_test_unseen": 0}
    key = hashlib.sha256(json.dumps(gen, sort_keys=True).encode()).hexdigest()[:12]
    data = WordDataModule(
        source="synthetic", root=str(Path(cfg.data_dir) / key), synthetic=gen,
        augmentation=recipe["augmentation"], translation=recipe["translation"],
        align=align, charset=charset, batch_size=cfg.batch_size, num_workers=cfg.num_workers, seed=recipe["seed"],
    )
    data.prepare_data(splits=("train", "val"))
    return data


def run_variant(cfg: Any, name: str) -> dict[str, Any]:
    """Fine-tune, evaluate, write ``<results>/<name>.json``; returns its contents."""
    recipe = variant_settings(cfg, name)
    device = resolve_device(cfg.device)
    pl.seed_everything(recipe["seed"], workers=True, verbose=False)
    module = load_checkpoint(recipe["init"])
    module.hparams.lr = cfg.lr
    module.hparams.warmup_steps = cfg.warmup_steps
    module.hparams.scheduler = "cosine"
    module.train()
    start = time.perf_counter()
    data = training_data(cfg, recipe, module.charset.chars, module.align)
    generated = time.perf_counter() - start
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else device, devices=1, max_epochs=1, precision="32-true", logger=False, enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=False, gradient_clip_val=5.0, num_sanity_val_steps=0,
        use_distributed_sampler=False, callbacks=[StepLog()],
    )
    trainer.fit(module, datamodule=data)
    trained = time.perf_counter() - start - generated
    module.eval()
    out: dict[str, Any] = {
        "variant": name, "recipe": recipe, "init_weights": module.provenance["weights"],  # which model it started from (the path may be retrained)
        "generation_s": round(generated, 1), "training_s": round(trained, 1),
    }
    out["val"] = {k.split("/", 1)[1]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    out.update(evaluate_extra_sets(module, cfg.eval_sets, device, readings=False)[0])
    if cfg.probes is not None:
        out["shortcuts"] = shortcut_scores(cfg, module)
    # The weights, for diagnostics later (not committed: the results are the JSON).
    models = Path(cfg.data_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(models / f"{name}.ckpt", weights_only=True)
    write_json(Path(cfg.results) / f"{name}.json", out)
    return out


def shortcut_scores(cfg: Any, module: Any) -> dict[str, float]:
    """The translation and background shortcuts of the fine-tuned model on 64 probe words: accuracy
    unshifted, its drop at shifts >= 8 px and its worst drop over 0..16 px, and the CER cost of specks."""
    settings = DiagnosticsSettings(num_probes=64, relevance_probes=0, seed=cfg.seed)
    data = WordDataModule(**{**cfg.probes, "num_workers": 0, "charset": module.charset.chars})
    data.prepare_data(splits=(settings.probe_split,))
    probes = settings.choose_probes(data.splits()[settings.probe_split]).aligned(module.align)
    scores = settings.diagnose(CRNNScorer.of(module), probes).scores
    return {
        scores.key("accuracy", 0): scores.accuracy_at(0), scores.key("accuracy_drop"): scores.accuracy_drop, "max_acc_drop": scores.max_accuracy_drop,
        scores.key("cer_clean"): scores.specks.clean, scores.key("cer_increase_specks"): scores.specks.increase,
    }


SMALL_SET = 20  # words: sets this small are shown as words read
# Shortcut scores in the table (points): the translation shortcut and the background one.
SHORTCUT_COLUMNS = (("max_acc_drop", "worst shift drop (points)"), ("cer_increase@specks", "specks cost (points)"))


def results_table(cfg: Any) -> str:
    """Markdown: one row per variant with results, CER per evaluation set (words read, for a set of
    a few words) and its change from the variant it is measured against (``against``: ``control``)."""
    rows_data = {}
    for name in cfg.variants:
        path = Path(cfg.results) / f"{name}.json"
        if path.is_file():
            rows_data[name] = json.loads(path.read_text())
    if not rows_data:
        return "(no results yet)"
    sets = list(cfg.eval_sets)
    # A set of a few words (e.g. the 8 real words) is shown as words read exactly: its CER is a few characters.
    few = {s for s in sets if any(r[s]["n"] <= SMALL_SET for r in rows_data.values())}
    shortcuts = [(k, label) for k, label in SHORTCUT_COLUMNS if any(k in r.get("shortcuts", {}) for r in rows_data.values())]
    header = ["variant", *[f"{s} read" if s in few else f"{s} CER %" for s in sets], *[label for _, label in shortcuts], "what changes"]
    rows = []
    for name, res in rows_data.items():
        cells = [name]
        ref_name = variant_settings(cfg, name)["against"]
        control = rows_data.get(ref_name) if ref_name != name else None
        for s in sets:
            value = round(res[s]["acc"] * res[s]["n"]) if s in few else 100 * res[s]["cer"]
            cell = f"{value} of {res[s]['n']}" if s in few else f"{value:.1f}"
            if control is not None:
                base = round(control[s]["acc"] * control[s]["n"]) if s in few else 100 * control[s]["cer"]
                cell += f" ({value - base:+d})" if s in few else f" ({value - base:+.1f})"
            cells.append(cell)
        for key, _ in shortcuts:
            value = res.get("shortcuts", {}).get(key)
            cells.append("–" if value is None else f"{100 * value:.1f}")
        cells.append(variant_settings(cfg, name)["description"])
        rows.append(cells)
    return markdown_rows(header, rows)


TABLE_START, TABLE_END = "<!-- ablation table -->\n", "<!-- /ablation table -->"


def write_table(path: Path, table: str) -> None:
    """Replace what lies between the table markers of the Markdown file ``path`` by ``table``."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"{path}: no '{TABLE_START.strip()}' ... '{TABLE_END}' markers to put the table between")
    atomic_write_bytes(path, (text[: start + len(TABLE_START)] + table.strip() + "\n" + text[end:]).encode("utf-8"))


def check_data_settings(cfg: Any) -> None:
    """Raise an ``HTRError`` naming the key for a bad evaluation set, probe set or variant: a bad
    setting stops the ablation before any run, not hours in."""
    check_extra_sets(cfg.eval_sets, "eval_sets")
    if cfg.probes is not None:
        eval_data(cfg.probes, option="probes")
    for name in cfg.variants:
        try:
            recipe = variant_settings(cfg, name)
        except ValueError as err:  # its message names the variant's key
            raise UsageError(str(err)) from None
        eval_data({k: recipe[k] for k in ("synthetic", "translation", "augmentation")}, option=f"variants.{name}")


def check_same_starts(cfg: Any, pending: list[str]) -> None:
    """Each pending variant's starting checkpoint reads, and the variant it is measured against, if
    it has results, started from the weights its ``init`` holds now: a shipped checkpoint retrained
    under the same path would otherwise compare a fresh fine-tune with one of the old model."""
    weights = {}
    for name in pending:
        recipe = variant_settings(cfg, name)
        ref = recipe["against"]
        ref_init = variant_settings(cfg, ref)["init"]
        for init in (recipe["init"], ref_init):
            if init not in weights:
                weights[init] = weights_digest(read_checkpoint(init)["state_dict"])
        path = Path(cfg.results) / f"{ref}.json"
        if ref in pending or not path.is_file():
            continue
        recorded = json.loads(path.read_text()).get("init_weights")
        if recorded is None:
            log.warning("%s: %s records no starting weights; it cannot be checked to start from %s as it is now", name, path, ref_init)
        elif recorded != weights[ref_init]:
            raise ConfigError(
                f"variants.{name}.against",
                f"{path} was fine-tuned from other weights ({recorded}) than {ref_init} holds now ({weights[ref_init]}); "
                f"move it away to rerun {ref!r} from today's checkpoint, or set {ref!r}'s init to the checkpoint it started from",
            )


def main(args: list[str] | None = None) -> int:
    """Run the variants without results (or print the table); bad input raises an ``HTRError``
    before any variant trains (see ``htr.errors.run_main``)."""
    cfg = build_parser().parse_args(args)
    if cfg.table:
        print(results_table(cfg))
        if cfg.write_table:
            try:
                write_table(Path(cfg.write_table), results_table(cfg))
            except ValueError as err:  # no table markers in the file
                raise ConfigError("write_table", str(err)) from None
        return 0
    unknown = [n for n in cfg.only or [] if n not in cfg.variants]
    if unknown:
        raise ConfigError("only", f"no variant named {', '.join(unknown)} (have {', '.join(cfg.variants)})")
    for name, low in (("samples", 1), ("n_val", 1), ("warmup_steps", 0), ("batch_size", 1), ("num_workers", 0)):
        at_least(name, getattr(cfg, name), low)
    positive("lr", cfg.lr)
    resolve_device(cfg.device)
    check_data_settings(cfg)
    todo = list(cfg.only) if cfg.only else list(cfg.variants)  # in the order asked for
    pending = [name for name in todo if not (Path(cfg.results) / f"{name}.json").is_file()]
    check_same_starts(cfg, pending)
    for name in todo:
        if (Path(cfg.results) / f"{name}.json").is_file():
            log.info("%s: results exist; skipped", name)
            continue
        log.info("%s: %s", name, json.dumps(variant_settings(cfg, name)))
        res = run_variant(cfg, name)
        log.info("%s: %s", name, ", ".join(f"{s} CER {100 * res[s]['cer']:.2f} %" for s in cfg.eval_sets))
    print(results_table(cfg))
    return 0


if __name__ == "__main__":
    run_main(main, prog="python -m htr.experiment.ablation")
