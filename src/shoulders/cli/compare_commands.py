"""`shoulders compare`: feature extraction vs two-phase fine-tuning vs from scratch, honestly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shoulders.cli.console import add_command, stderr_console, stdout_console
from shoulders.config import DEFAULT_EPOCHS_FINETUNE, DEFAULT_EPOCHS_HEAD, DEFAULT_LR, DEFAULT_PATIENCE
from shoulders.runs import layout
from shoulders.tracking.lineage import STORE_FILE

console = stderr_console()


def register(app: typer.Typer) -> None:
    add_command(app, "compare", compare)


def compare(
    data: Annotated[Path, typer.Argument(help="A folder of class subfolders (or with train/ and test/ or val/ inside); with --task text, a CSV/TSV file or a folder of .txt files.")],
    task: Annotated[str, typer.Option(help="'image' or 'text'.")] = "image",
    backbone: Annotated[str | None, typer.Option(help="A registered backbone (`shoulders backbones`); default efficientnet_lite0, or minilm_l6 for text.", show_default=False)] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per strategy (0..N-1); N > 1 gives mean ± sd.")] = 1,
    sizes: Annotated[str | None, typer.Option(help="Data-efficiency curve: training images (or texts) per class, e.g. 50,200,all.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Square input size in pixels (default: the backbone's).")] = None,
    batch_size: Annotated[int, typer.Option(help="The global batch: split evenly over every device of the run.")] = 32,
    epochs_head: Annotated[int, typer.Option(help="Max epochs of phase 1 (scratch trains epochs-head + epochs-finetune).")] = DEFAULT_EPOCHS_HEAD,
    epochs_finetune: Annotated[int, typer.Option(help="Max epochs of phase 2.")] = DEFAULT_EPOCHS_FINETUNE,
    patience: Annotated[int, typer.Option(help="Early stopping: epochs without a better val loss.")] = DEFAULT_PATIENCE,
    lr: Annotated[float, typer.Option(help="Phase-1 learning rate (Adam); scratch uses it throughout.")] = DEFAULT_LR,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Augmentation for every strategy alike (images only).")] = True,
    text_column: Annotated[str | None, typer.Option(help="Text: the text column's name (default 'text', else 'sentence', ...) or its position (0, 1, ...) in a file without header.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Text: the label column's name (default 'label') or position.")] = None,
    test: Annotated[Path | None, typer.Option(help="Text: a test file (same format); used only for the final scores.")] = None,
    val: Annotated[Path | None, typer.Option(help="Text: a validation file (default: carved from the training rows).")] = None,
    max_train: Annotated[int | None, typer.Option(help="Text: train every run on the same stratified, seeded subset of this many training rows.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Text: tokens per text (default: fits 99% of the training texts, at most 128).")] = None,
    precision: Annotated[str, typer.Option(help="auto, float32 or mixed_bfloat16 (auto: bfloat16 compute on a GPU/TPU that has it, float32 on a CPU).")] = "auto",
    devices: Annotated[str | None, typer.Option(help="Devices: 'all' or a count (default: all on an accelerator, 1 on a CPU; more than 1 needs the JAX backend). --batch-size is global.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(help="Compare folder (default: runs/compare-<timestamp>).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Decode/feature cache (default: $SHOULDERS_CACHE or ~/.cache/shoulders).")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=f"MLflow tracking URI for the lineage (default: $MLFLOW_TRACKING_URI, else sqlite:///DIR/{STORE_FILE}, DIR the folder holding the run folder).", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Train feature extraction, two-phase fine-tuning and from-scratch on the same splits; print and save the table."""
    from shoulders.api.compare import compare as run_compare
    from shoulders.config import devices_option
    from shoulders.training.finetuner import Display

    text_options = {
        "text_column": text_column, "label_column": label_column, "test_file": str(test) if test else None,
        "val_file": str(val) if val else None, "max_train": max_train, "max_length": max_length,
    }
    result = run_compare(
        data, backbone=backbone, seeds=seeds, sizes=sizes, out=out, display=Display(console, not quiet),
        task=task, image_size=image_size, batch_size=batch_size, epochs_head=epochs_head,
        epochs_finetune=epochs_finetune, patience=patience, lr=lr, augment=augment,
        precision=precision, devices=devices_option(devices), cache_dir=str(cache_dir) if cache_dir else None,
        tracking_uri=tracking_uri, **text_options,
    )
    print_comparison(result)


def print_comparison(result: dict) -> None:
    from shoulders.reporting.summary import COMPARISON_COLUMNS, efficiency_columns, efficiency_rows, format_row

    seeds = len(result["seeds"])
    table = Table(title=f"{result['data']} with {result['backbone']}: test accuracy over {seeds} seed{'s' if seeds > 1 else ''} (mean ± sd)", title_justify="left")
    for column in COMPARISON_COLUMNS:
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for row in result["table"]:
        table.add_row(*format_row(row))
    out = stdout_console()
    out.print(table)
    if efficiency := efficiency_rows(result):
        curve = Table(title="Data efficiency (same test set at every size)", title_justify="left")
        for column in efficiency_columns(result):
            curve.add_column(column)
        for row in efficiency:
            curve.add_row(*row)
        out.print(curve)
    folder = Path(result["path"])
    out.print(f"comparison: {folder / layout.COMPARISON}   report: {folder / layout.REPORT}")
