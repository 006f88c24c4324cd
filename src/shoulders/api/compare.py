"""An honest comparison: feature extraction vs two-phase fine-tuning vs training from scratch.

Every strategy trains on the same split (the split depends only on the seed), with the same options
and augmentation, and is scored on the same untouched test set. ``sizes`` adds the data-efficiency
curve: the same test set, with only ``n`` training images per class (transfer vs scratch). Texts
(``task="text"``) compare the same way; their sizes are ``n x classes`` training rows kept by
``max_train`` (stratified, so each class keeps its share), after the same test set is set aside.

The compare folder holds ``comparison.json`` (rewritten after every run, so an interrupted comparison
keeps what it finished), one run folder per (strategy, seed, size), and ``report.html``.

Why every seed is a full run: with augmentation on (the default, as for a real user), phase 1 sees a
differently augmented image each epoch, so the frozen features cannot be cached and an extra seed of
feature extraction varies the split, the augmentation draws and the head initialisation, not the head
alone. Its cost is the frozen forward pass per epoch (no backward through the backbone), a fraction of
fine-tuning's. With ``augment=False`` the recipe's feature cache makes extra feature-extraction seeds
almost free (only the validation carve and the head change).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoulders.api.train import train
from shoulders.config import INPUT_PATHS, STRATEGIES, RunConfig, absolute_path, augmentation_option, check_number
from shoulders.errors import ShouldersError
from shoulders.io import write_json
from shoulders.runs import layout
from shoulders.runs.writer import check_output_folder
from shoulders.training.finetuner import Display

COMPARED_STRATEGIES = ("feature-extraction", "two-phase", "scratch")
CURVE_STRATEGIES = ("two-phase", "scratch")  # the data-efficiency curve: transfer vs scratch
TEXT_NOTE = (
    "Texts are not augmented, so feature extraction and phase 1 of two-phase train the head on the frozen "
    "encoder's cached features: an extra seed of feature extraction costs little (the validation carve and the "
    "head change); two-phase and scratch pay for every encoder pass of every epoch."
)


class CompareError(ShouldersError, ValueError):
    """A comparison option is invalid; the message says what to pass instead."""


class CompareExistsError(ShouldersError, FileExistsError):
    """The compare folder already holds a comparison."""


def parse_sizes(text: str | Sequence[str | int] | None) -> list[int | str]:
    """``"50,200,all"`` -> ``[50, 200, "all"]`` (training images per class; "all" uses every image)."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    sizes: list[int | str] = []
    for item in items:
        item = str(item).strip().lower()
        if item == "all":
            sizes.append("all")
        elif item.isdigit() and int(item) >= 2:
            sizes.append(int(item))
        else:
            raise CompareError(f"--sizes takes training images per class, e.g. 50,200,all. Received: {item!r}")
    return sizes


@dataclass
class Plan:
    """What a comparison trains: every (strategy, seed, size) run of one data source with shared options."""

    data: str
    folder: Path
    options: dict[str, Any]
    backbone: str
    task: str
    sizes: list[int | str]
    classes: int = 0  # texts with sizes: n per class is n x classes training rows

    def runs(self, seeds: int, strategies: Sequence[str]) -> list[tuple[str, int, int | str]]:
        planned = [(strategy, seed, "all") for seed in range(seeds) for strategy in strategies]
        for size in self.sizes:
            if size != "all":
                planned += [(strategy, seed, size) for seed in range(seeds) for strategy in CURVE_STRATEGIES]
        return planned

    def config(self, strategy: str, seed: int, size: int | str) -> RunConfig:
        """The run's config: a text size keeps ``size x classes`` rows, an image size links a subset folder."""
        name = f"{strategy}-seed{seed}" + ("" if size == "all" else f"-n{size}")
        source, options = self.data, self.options
        if size != "all" and self.task == "text":
            options = {**options, "max_train": size * self.classes}
        elif size != "all":
            from shoulders.image.recipe import subset_folder

            base = RunConfig(data=self.data, backbone=self.backbone, seed=seed, **options)
            source = str(subset_folder(base, size, self.folder / "data" / f"seed{seed}-n{size}"))
        return RunConfig(data=source, backbone=self.backbone, strategy=strategy, seed=seed, out=str(self.folder / name), **options)


def compare(
    data: str | os.PathLike,
    *,
    seeds: int = 1,
    sizes: str | Sequence[str | int] | None = None,
    out: str | os.PathLike | None = None,
    strategies: Sequence[str] = COMPARED_STRATEGIES,
    display: Display | None = None,
    **options: Any,
) -> dict:
    """Train every strategy on ``data`` for ``seeds`` seeds (0..seeds-1) and return the comparison.

    ``options`` are `RunConfig` fields shared by every run (``epochs_head``, ``image_size``, ``augment``...;
    for texts ``task="text"``, ``text_column``, ``label_column``, ``test_file``, ``val_file``, ``max_train``,
    ``max_length``; ``backbone``, None for the task's default: efficientnet_lite0, or minilm_l6 for text).
    ``display``: where progress goes (default: stderr, with progress bars). ``tracking_uri`` (among
    ``options``): the MLflow store every run's lineage goes to (default: as `shoulders.api.train.train`).
    Returns the dict saved as ``comparison.json``: ``table`` (one row per strategy, mean and sd over
    seeds), ``curve`` (when ``sizes`` is given), ``runs`` (every run's folder and headline numbers).
    """
    display = display or Display()
    options = dict(options)
    tracking_uri = options.pop("tracking_uri", None)  # where lineage goes, not a run option
    plan = _plan(data, seeds, sizes, out, strategies, options)
    plan.folder.mkdir(parents=True, exist_ok=True)  # only once every option is known to be good
    result = _record(plan, seeds, strategies)
    write_json(plan.folder / layout.COMPARISON, result)  # also marks the folder: its runs get the compare tag
    planned = plan.runs(seeds, strategies)
    for strategy, seed, size in planned:
        config = plan.config(strategy, seed, size)
        display.console.print(f"[bold]compare[/] {len(result['runs']) + 1}/{len(planned)}: {Path(config.out).name}")
        result["runs"].append(_train_one(config, size, display, tracking_uri))
        _summarise(result)
        write_json(plan.folder / layout.COMPARISON, result)
    result["status"] = "finished"
    write_json(plan.folder / layout.COMPARISON, result)
    try:
        from shoulders.reporting import write_compare_report

        result["report"] = str(write_compare_report(plan.folder))
    except Exception as error:  # the numbers are saved; a failed page must not hide them
        display.console.print(f"[yellow]warning:[/] could not write {plan.folder}/report.html ({error}); comparison.json is complete.")
    write_json(plan.folder / layout.COMPARISON, result)
    result["path"] = str(plan.folder)
    return result


def _plan(data, seeds, sizes, out, strategies, options: dict[str, Any]) -> Plan:
    """Every option checked before any folder is made or any run trained."""
    check_number("--seeds", seeds, low=1, whole=True, meaning="seeds per strategy")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise CompareError(f"unknown strategies {unknown}; compare knows two-phase, feature-extraction, full, scratch")
    folder = Path(out) if out else Path("runs") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    data = absolute_path(data)  # every run's config.json then works from any folder
    check_output_folder(folder, "--out", data)
    if (folder / layout.COMPARISON).exists():
        raise CompareExistsError(f"{folder} already holds a comparison: choose another --out.")
    options = {key: absolute_path(value) if key in INPUT_PATHS else value for key, value in options.items()}
    backbone = options.pop("backbone", None)
    for reserved in ("strategy", "seed", "out", "data"):
        if reserved in options:
            raise CompareError(f"compare sets {reserved!r} itself for every run: do not pass it")
    options = augmentation_option({**options, "augment": options.get("augment", True)})
    checked = RunConfig(data=str(data), backbone=backbone, **options)  # fail on a bad option before any training
    size_list = parse_sizes(sizes)
    sized = any(size != "all" for size in size_list)
    if sized and checked.task == "image" and not Path(data).is_dir():
        raise CompareError(f"--sizes needs a folder of class subfolders to draw subsets from. Received: {data}")
    if sized and checked.task == "text" and options.get("max_train") is not None:
        raise CompareError("--sizes and --max-train both choose how many training rows a run gets: give one of them")
    plan = Plan(str(data), folder, options, checked.backbone, checked.task, size_list)
    if sized and checked.task == "text":
        from shoulders.text.recipe import class_count

        plan.classes = class_count(checked)
    return plan


def _record(plan: Plan, seeds: int, strategies: Sequence[str]) -> dict[str, Any]:
    """comparison.json before the first run: what is compared, with which options, and why seeds are full runs."""
    note = TEXT_NOTE if plan.task == "text" else __doc__.split("Why every seed is a full run: ")[1].strip().replace("\n", " ")
    shown = {k: v for k, v in plan.options.items() if k != "augmentation"} | {"augment": plan.options["augmentation"] is not None}
    return {
        "name": plan.folder.name,
        "task": plan.task,
        "data": plan.data,
        "backbone": plan.backbone,
        "seeds": list(range(seeds)),
        "sizes": plan.sizes,
        "strategies": list(strategies),
        "options": shown,
        "note": note,
        "status": "running",
        "runs": [],
    }


def _train_one(config: RunConfig, size: int | str, display: Display, tracking_uri: str | None) -> dict:
    run = train(config, progress=display.enabled, console=display.console, tracking_uri=tracking_uri)
    metrics = run.metrics
    counts = run.read(layout.DATA)["class_counts"]
    per_class_pool = [counts["train"][name] + counts["val"][name] for name in run.classes]
    return {
        "strategy": config.strategy,
        "seed": config.seed,
        "size": size,
        "train_images_per_class": round(statistics.mean(per_class_pool), 1),
        "path": str(run.path),
        "test_accuracy": metrics["test_accuracy"],
        "test_macro_f1": metrics["test_macro_f1"],
        "train_seconds": metrics["train_seconds"],
        "trainable_params": max(metrics["trainable_params_phase1"], metrics["trainable_params_phase2"]),
        "total_params": metrics["total_params"],
        "epochs": metrics["epochs_phase1"] + metrics["epochs_phase2"],
        "test_count": metrics["test"]["count"],
    }


def _summarise(result: dict) -> None:
    """Mean and sample sd over seeds, per strategy (the main table) and per (strategy, size) (the curve)."""
    result["table"] = [
        _row(strategy, [r for r in result["runs"] if r["strategy"] == strategy and r["size"] == "all"])
        for strategy in result["strategies"]
        if any(r["strategy"] == strategy and r["size"] == "all" for r in result["runs"])
    ]
    curve = []
    for strategy in CURVE_STRATEGIES:
        for size in result["sizes"]:
            runs = [r for r in result["runs"] if r["strategy"] == strategy and r["size"] == size]
            if runs:
                curve.append({**_row(strategy, runs), "size": size, "train_images_per_class": _mean([r["train_images_per_class"] for r in runs])})
    result["curve"] = curve


def _row(strategy: str, runs: list[dict]) -> dict:
    accuracies = [r["test_accuracy"] for r in runs]
    return {
        "strategy": strategy,
        "seeds": len(runs),
        "test_accuracy_mean": _mean(accuracies),
        "test_accuracy_sd": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
        "train_seconds_mean": _mean([r["train_seconds"] for r in runs]),
        "trainable_params": runs[0]["trainable_params"],
        "total_params": runs[0]["total_params"],
    }


def _mean(values: list[float]) -> float:
    return float(statistics.mean(values))
