"""`shoulders train`, `evaluate` and `doctor`."""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from shoulders.cli.console import add_command, stderr_console, stdout_console
from shoulders.config import (
    DEFAULT_EPOCHS_FINETUNE,
    DEFAULT_EPOCHS_HEAD,
    DEFAULT_LR,
    DEFAULT_PATIENCE,
    STRATEGIES,
)
from shoulders.tracking.lineage import STORE_FILE

console = stderr_console()


def register(app: typer.Typer) -> None:
    add_command(app, "train", train)
    add_command(app, "evaluate", evaluate)
    add_command(app, "doctor", doctor)


def train(
    data: Annotated[Path | None, typer.Argument(help="A folder of class subfolders, or with train/ and test/ (or val/) inside; with --task text, a CSV/TSV file or a folder of .txt files.", show_default=False)] = None,
    dataset: Annotated[str | None, typer.Option(help="An embedded dataset instead of DATA: 'digits' (scikit-learn, offline).")] = None,
    task: Annotated[str, typer.Option(help="'image' or 'text'.")] = "image",
    backbone: Annotated[str | None, typer.Option(help="A registered backbone (`shoulders backbones`); default efficientnet_lite0, or minilm_l6 for text.", show_default=False)] = None,
    strategy: Annotated[str, typer.Option(help=f"One of: {', '.join(STRATEGIES)}.")] = "two-phase",
    weights: Annotated[str, typer.Option(help="'imagenet' or a local weights file (.pth for EfficientNet-Lite, .h5 for keras.applications).")] = "imagenet",
    image_size: Annotated[int | None, typer.Option(help="Square input size in pixels (default: the backbone's).")] = None,
    crop_fraction: Annotated[float | None, typer.Option(help="Centre crop of the short side before resizing (default: the backbone's own, e.g. 0.875).")] = None,
    batch_size: Annotated[int, typer.Option(help="The global batch: split evenly over every device of the run.")] = 32,
    epochs_head: Annotated[int, typer.Option(help="Max epochs of phase 1 (head only).")] = DEFAULT_EPOCHS_HEAD,
    epochs_finetune: Annotated[int, typer.Option(help="Max epochs of phase 2 (top blocks unfrozen).")] = DEFAULT_EPOCHS_FINETUNE,
    patience: Annotated[int, typer.Option(help="Early stopping: epochs without a better val loss.")] = DEFAULT_PATIENCE,
    lr: Annotated[float, typer.Option(help="Phase-1 learning rate (Adam).")] = DEFAULT_LR,
    lr_finetune: Annotated[float | None, typer.Option(help="Phase-2 learning rate (default: lr / 100).")] = None,
    unfreeze: Annotated[int | None, typer.Option(help="Backbone blocks to unfreeze in phase 2 (default: the top ~30%).")] = None,
    layer_decay: Annotated[float | None, typer.Option(help="Layer-wise LR decay in phase 2, e.g. 0.8 (off by default).")] = None,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Random flip/rotation/zoom on training images.")] = True,
    text_column: Annotated[str | None, typer.Option(help="Text: the text column's name (default 'text', else 'sentence', ...) or its position (0, 1, ...) in a file without header.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Text: the label column's name (default 'label') or position.")] = None,
    test: Annotated[Path | None, typer.Option(help="Text: a test file (same format); used only for the final score.")] = None,
    val: Annotated[Path | None, typer.Option(help="Text: a validation file (default: carved from the training rows).")] = None,
    max_train: Annotated[int | None, typer.Option(help="Text: train on a stratified, seeded subset of this many training rows.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Text: tokens per text (default: fits 99% of the training texts, at most 128).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    precision: Annotated[str, typer.Option(help="auto, float32 or mixed_bfloat16 (auto: bfloat16 compute on a GPU/TPU that has it, float32 on a CPU).")] = "auto",
    devices: Annotated[str | None, typer.Option(help="Devices per process: 'all' or a count (default: all on an accelerator, 1 on a CPU). Needs the JAX backend for more than 1. --batch-size is the global batch, split evenly over all devices; the LR is not rescaled.", show_default=False)] = None,
    coordinator: Annotated[str | None, typer.Option(help="Several processes (machines): process 0's HOST:PORT, the same for every process (or JAX_COORDINATOR_ADDRESS).")] = None,
    num_processes: Annotated[int | None, typer.Option(help="Several processes: how many join the job (or JAX_NUM_PROCESSES). Only process 0 writes the run folder.")] = None,
    process_id: Annotated[int | None, typer.Option(help="Several processes: this one's index, 0 to N-1 (or JAX_PROCESS_ID).")] = None,
    engine: Annotated[str, typer.Option(help="Where the frozen backbone's features are computed: local, or ray (a Ray actor pool, extra shoulders\\[ray]; with --no-augment: --strategy feature-extraction or two-phase).")] = "local",
    ray_address: Annotated[str | None, typer.Option(envvar="RAY_ADDRESS", help="--engine ray: the cluster to join (default: a local one is started).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/<timestamp>-<backbone>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run in --out from its last completed epoch.")] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Decode/feature cache (default: $SHOULDERS_CACHE or ~/.cache/shoulders).")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=f"MLflow tracking URI for the lineage (default: $MLFLOW_TRACKING_URI, else sqlite:///DIR/{STORE_FILE}, DIR the folder holding the run folder).", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Fine-tune a pretrained backbone on your images (or texts): head first, then the top blocks; report on an untouched test split."""
    from shoulders.api.train import train as train_run
    from shoulders.config import RunConfig, devices_option
    from shoulders.training.compute import Cluster

    config = RunConfig.from_options(
        _data_source(data, dataset), task=task, backbone=backbone, strategy=strategy,
        weights=None if weights.lower() == "none" else weights, image_size=image_size, crop_fraction=crop_fraction,
        batch_size=batch_size, epochs_head=epochs_head, epochs_finetune=epochs_finetune, patience=patience, lr=lr,
        lr_finetune=lr_finetune, unfreeze=unfreeze, layer_decay=layer_decay, augment=augment,
        text_column=text_column, label_column=label_column, test_file=str(test) if test else None,
        val_file=str(val) if val else None, max_train=max_train, max_length=max_length, seed=seed,
        precision=precision, devices=devices_option(devices), engine=engine, ray_address=ray_address,
        out=str(out) if out else None, cache_dir=str(cache_dir) if cache_dir else None,
    )
    cluster = Cluster(coordinator, num_processes, process_id)
    with _explained_interrupt(config):
        run = train_run(config, resume=resume, progress=not quiet, console=console, cluster=cluster, tracking_uri=tracking_uri)
    if run is not None:  # None: a process other than 0 of a job, whose process 0 prints the summary
        print_summary(run)


@contextlib.contextmanager
def _explained_interrupt(config) -> Iterator[None]:
    started = time.time()
    try:
        yield
    except KeyboardInterrupt:
        _interrupted(config, started)


def _interrupted(config, started: float) -> NoReturn:
    """Ctrl-C: say what was kept and the exact command that continues the run, then exit 130 (as shells do)."""
    from shoulders.runs import layout

    folder = Path(config.out) if config.out else _newest_run(Path("runs"), started)
    if folder is None or not (folder / layout.CONFIG).exists():
        console.print("[yellow]interrupted[/] before the run folder was written: nothing to keep; start again.")
        raise typer.Exit(130)
    epochs_log = folder / layout.STATE / "epochs.jsonl"
    epochs = len(epochs_log.read_text().splitlines()) if epochs_log.exists() else 0
    data = "--dataset digits" if config.data == "digits" else shlex.quote(config.data)
    console.print(
        f"[yellow]interrupted:[/] {escape(str(folder))} keeps its {epochs} finished epochs. Continue it with:\n"
        f"  shoulders train {escape(data)} --out {escape(shlex.quote(str(folder)))} --resume",
        soft_wrap=True,  # a command to copy: never folded
    )
    raise typer.Exit(130)


def _newest_run(root: Path, started: float) -> Path | None:
    """The run folder this process made under the default ``runs/`` (the newest one begun after ``started``)."""
    made = [path for path in root.glob("*") if path.is_dir() and path.stat().st_mtime >= started - 1] if root.is_dir() else []
    return max(made, key=lambda path: path.stat().st_mtime, default=None)


def _data_source(data: Path | None, dataset: str | None) -> str:
    if dataset is not None and data is not None:
        raise typer.BadParameter("give either DATA or --dataset, not both", param_hint="DATA")
    if dataset is not None:
        if dataset != "digits":
            raise typer.BadParameter(f"unknown dataset {dataset!r}; embedded: digits", param_hint="--dataset")
        return "digits"
    if data is None:
        raise typer.BadParameter("give a DATA folder, or --dataset digits for the embedded demo", param_hint="DATA")
    return str(data)


def print_summary(run) -> None:
    """The one-screen summary at the end of a run (the same rows head its report.html)."""
    from shoulders.reporting.summary import run_summary

    table = Table(title=f"Run {run.name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in run_summary(run):
        table.add_row(key, value)
    stdout_console().print(table)


def evaluate(
    run_path: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")],
    data: Annotated[Path | None, typer.Option(help="Other labelled data to evaluate on (default: the run's own test split): a folder of class subfolders, or for a text run a CSV/TSV file (or folder of .txt files) with the run's text and label columns.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate a trained run: accuracy, per-class precision/recall/F1 and the confusion matrix."""
    from shoulders.api.evaluate import evaluate_run

    result = evaluate_run(run_path, data)
    for warning in result.get("warnings", []):
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    low, high = result.get("accuracy_ci95", (float("nan"),) * 2)
    interval = f" (95% CI {low:.4f}-{high:.4f})" if low == low else ""
    table = Table(title=f"{run_path.name} on {result['source']}: accuracy {result['accuracy']:.4f}{interval}, macro F1 {result['macro_f1']:.4f} ({result['count']} {'texts' if result.get('task') == 'text' else 'images'})")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column)
    for name, row in result["per_class"].items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    stdout_console().print(table)


def doctor(
    target: Annotated[Path, typer.Argument(metavar="RUN_OR_MODEL", help="A run folder or a .keras model.")],
) -> None:
    """Check a saved model against the recipe's rules (preprocessing inside, BatchNorm frozen, logits, honest split)."""
    from shoulders.training.doctor import diagnose

    findings = diagnose(target)
    table = Table(title=f"shoulders doctor {target}")
    for column in ("check", "result", "why it matters / what to do"):
        table.add_column(column)
    for finding in findings:
        table.add_row(finding.check, "[green]ok[/]" if finding.ok else "[red]problem[/]", finding.explanation)
    stdout_console().print(table)
    if not all(finding.ok for finding in findings):
        raise typer.Exit(1)
