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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console

from shoulders.io import read_json, write_json

if TYPE_CHECKING:
    from shoulders.config import RunConfig

COMPARED_STRATEGIES = ("feature-extraction", "two-phase", "scratch")
CURVE_STRATEGIES = ("two-phase", "scratch")  # the data-efficiency curve: transfer vs scratch
COMPARISON_FILE = "comparison.json"
TEXT_NOTE = (
    "Texts are not augmented, so feature extraction and phase 1 of two-phase train the head on the frozen "
    "encoder's cached features: an extra seed of feature extraction costs little (the validation carve and the "
    "head change); two-phase and scratch pay for every encoder pass of every epoch."
)


class CompareError(ValueError):
    """A comparison option is invalid; the message says what to pass instead."""


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


def compare(
    data: str | os.PathLike,
    *,
    backbone: str | None = None,
    seeds: int = 1,
    sizes: str | Sequence[str | int] | None = None,
    out: str | os.PathLike | None = None,
    strategies: Sequence[str] = COMPARED_STRATEGIES,
    progress: bool = True,
    console: Console | None = None,
    **options: Any,
) -> dict:
    """Train every strategy on ``data`` for ``seeds`` seeds (0..seeds-1) and return the comparison.

    ``options`` are `RunConfig` fields shared by every run (``epochs_head``, ``image_size``, ``augment``...;
    for texts ``task="text"``, ``text_column``, ``label_column``, ``test_file``, ``val_file``, ``max_train``,
    ``max_length``). ``backbone`` None is the task's default (efficientnet_lite0, or minilm_l6 for text).
    Returns the dict saved as ``comparison.json``: ``table`` (one row per strategy, mean and sd over
    seeds), ``curve`` (when ``sizes`` is given), ``runs`` (every run's folder and headline numbers).
    """
    from shoulders.config import RunConfig

    if seeds < 1:
        raise CompareError(f"--seeds must be at least 1. Received: {seeds}")
    unknown = [s for s in strategies if s not in ("two-phase", "feature-extraction", "full", "scratch")]
    if unknown:
        raise CompareError(f"unknown strategies {unknown}; compare knows two-phase, feature-extraction, full, scratch")
    console = console or Console(stderr=True)
    folder = Path(out) if out else Path("runs") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    if (folder / COMPARISON_FILE).exists():
        raise FileExistsError(f"{folder} already holds a comparison: choose another --out.")
    options = _run_options(options)
    checked = RunConfig(data=str(data), backbone=backbone, **options)  # fail on a bad option before any training
    backbone, task = checked.backbone, checked.task
    size_list = parse_sizes(sizes)
    sized = any(size != "all" for size in size_list)
    if sized and task == "image" and not Path(data).is_dir():
        raise CompareError(f"--sizes needs a folder of class subfolders to draw subsets from. Received: {data}")
    if sized and task == "text" and options.get("max_train") is not None:
        raise CompareError("--sizes and --max-train both choose how many training rows a run gets: give one of them")
    classes = _text_class_count(checked) if sized and task == "text" else 0
    folder.mkdir(parents=True, exist_ok=True)  # only once every option is known to be good
    result: dict[str, Any] = {
        "name": folder.name,
        "task": task,
        "data": str(data),
        "backbone": backbone,
        "seeds": list(range(seeds)),
        "sizes": size_list,
        "strategies": list(strategies),
        "options": {k: v for k, v in options.items() if k != "augmentation"} | {"augment": options["augmentation"] is not None},
        "note": TEXT_NOTE if task == "text" else __doc__.split("Why every seed is a full run: ")[1].strip().replace("\n", " "),
        "status": "running",
        "runs": [],
    }
    write_json(folder / COMPARISON_FILE, result)  # also marks the folder: its runs get the compare tag
    planned = [(strategy, seed, "all") for seed in range(seeds) for strategy in strategies]
    for size in size_list:
        if size != "all":
            planned += [(strategy, seed, size) for seed in range(seeds) for strategy in CURVE_STRATEGIES]
    for strategy, seed, size in planned:
        name = f"{strategy}-seed{seed}" + ("" if size == "all" else f"-n{size}")
        console.print(f"[bold]compare[/] {len(result['runs']) + 1}/{len(planned)}: {name}")
        source, run_options = str(data), options
        if size != "all" and task == "text":
            run_options = {**options, "max_train": size * classes}
        elif size != "all":
            source = str(_subset_folder(folder, str(data), backbone, options, seed, size))
        config = RunConfig(data=source, backbone=backbone, strategy=strategy, seed=seed, out=str(folder / name), **run_options)
        result["runs"].append(_train_one(config, strategy, seed, size, progress, console))
        _summarise(result)
        write_json(folder / COMPARISON_FILE, result)
    result["status"] = "finished"
    write_json(folder / COMPARISON_FILE, result)
    try:
        from shoulders.reporting import write_compare_report

        result["report"] = str(write_compare_report(folder))
    except Exception as error:  # the numbers are saved; a failed page must not hide them
        console.print(f"[yellow]warning:[/] could not write {folder}/report.html ({error}); comparison.json is complete.")
    write_json(folder / COMPARISON_FILE, result)
    result["path"] = str(folder)
    return result


def load_comparison(folder: str | os.PathLike) -> dict:
    file = Path(folder) / COMPARISON_FILE
    if not file.exists():
        raise FileNotFoundError(f"{folder} holds no {COMPARISON_FILE}: give a folder written by `shoulders compare`.")
    return read_json(file)


def _run_options(options: dict[str, Any]) -> dict[str, Any]:
    from shoulders.config import Augmentation

    options = dict(options)
    for reserved in ("strategy", "seed", "out", "data", "backbone"):
        if reserved in options:
            raise CompareError(f"compare sets {reserved!r} itself for every run: do not pass it")
    augment = options.pop("augment", True) and options.get("task", "image") == "image"  # texts are not augmented
    augmentation = options.pop("augmentation", None)
    if isinstance(augmentation, dict):
        augmentation = Augmentation(**augmentation)
    options["augmentation"] = (augmentation or Augmentation()) if augment else None
    return options


def _text_class_count(config: RunConfig) -> int:
    """How many classes the table has: a text size of ``n`` per class is ``n x classes`` training rows."""
    from shoulders.text.recipe import load_data

    return len(load_data(config).classes)


def _train_one(config, strategy: str, seed: int, size: int | str, progress: bool, console: Console) -> dict:
    from shoulders.training.recipe import train

    run = train(config, progress=progress, console=console)
    metrics = run.metrics
    counts = read_json(run.path / "data.json")["class_counts"]
    per_class_pool = [counts["train"][name] + counts["val"][name] for name in run.classes]
    return {
        "strategy": strategy,
        "seed": seed,
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


def _subset_folder(folder: Path, data: str, backbone: str, options: dict, seed: int, size: int) -> Path:
    """``size`` training images per class drawn (seeded) from the seed's train+val pool, and the seed's full
    test set, as links in ``train/`` and ``test/``: every size is scored on exactly the same test images."""
    from shoulders import backbones
    from shoulders.config import RunConfig
    from shoulders.training.recipe import load_data

    config = RunConfig(data=data, backbone=backbone, seed=seed, **options)
    prepared = load_data(config, backbones.image_shape(backbones.get(backbone), config.image_size)[0], progress=False)
    root = Path(data)
    target = folder / "data" / f"seed{seed}-n{size}"
    if target.exists():
        return target
    rng = np.random.default_rng(seed)
    pool = np.concatenate([prepared.splits["train"], prepared.splits["val"]])
    for index, name in enumerate(prepared.classes):
        rows = pool[prepared.labels[pool] == index]
        chosen = rng.permutation(rows)[:size]
        for split, picked in (("train", chosen), ("test", prepared.splits["test"][prepared.labels[prepared.splits["test"]] == index])):
            destination = target / split / name
            destination.mkdir(parents=True, exist_ok=True)
            for row in picked:
                relative = prepared.names[int(row)]
                link = destination / relative.replace("/", "__")
                os.symlink((root / relative).resolve(), link)
    return target
