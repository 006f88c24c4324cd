"""`shoulders export`: write a verified .keras / SavedModel / TFLite export into RUN/exports/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from shoulders.cli.console import add_command, stderr_console, stdout_console

console = stderr_console()
FORMAT_NAMES = ("keras", "savedmodel", "tflite", "onnx")
QUANTIZE_NAMES = ("none", "float16", "dynamic", "int8")


def register(app: typer.Typer) -> None:
    add_command(app, "export", export)


def export(
    run_path: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")],
    format: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMAT_NAMES)} (onnx needs the onnx extra: pip install 'shoulders\\[onnx]').")] = "savedmodel",
    quantize: Annotated[str, typer.Option(help=f"TFLite only: {', '.join(QUANTIZE_NAMES)} (int8: full integer, calibrated on training images; image runs only).")] = "none",
) -> None:
    """Export a run and verify it on the run's test split; the figures go to RUN/exports/manifest.json.

    Text runs' exports take token ids and come with tokenizer.json (Hugging Face tokenizers)."""
    from shoulders.api.backfill import open_run
    from shoulders.export import ExportVerificationError, export_run

    if format not in FORMAT_NAMES:
        raise typer.BadParameter(f"unknown format {format!r}; choose one of: {', '.join(FORMAT_NAMES)}", param_hint="--format")
    if quantize not in QUANTIZE_NAMES:
        raise typer.BadParameter(f"unknown quantization {quantize!r}; choose one of: {', '.join(QUANTIZE_NAMES)}", param_hint="--quantize")
    try:
        # open_run: a run folder from an older shoulders first gets the reference files the export verifies on
        entry = export_run(open_run(run_path), format, quantize)
    except ExportVerificationError as error:  # the export was written but must not be deployed: exit 1, not 2
        console.print(f"[red]export failed verification:[/] {escape(str(error))}")
        raise typer.Exit(1) from None
    print_entry(run_path, entry)


def print_entry(run_path: Path, entry: dict) -> None:
    out = stdout_console()
    out.print(f"wrote {run_path / entry['path']} ({entry['bytes'] / 1e6:.1f} MB) in {entry['seconds']:.0f} s")
    for name, signature in entry.get("signatures", {}).items():
        inputs = ", ".join(f"{key}: {spec}" for key, spec in signature["inputs"].items())
        outputs = ", ".join(f"{key}: {spec}" for key, spec in signature["outputs"].items())
        out.print(f"signature [bold]{name}[/]: inputs {inputs} -> outputs {outputs}")
    if "requires" in entry:
        needs = " and ".join(["keras", "a backend", *entry["requires"]])
        out.print(f"loads with keras.saving.load_model(path, safe_mode=True) where {needs} are installed")
    if "tokenizer" in entry:
        out.print(f"tokenizer: {run_path / entry['tokenizer']}")
    if "note" in entry:
        out.print(f"note: {entry['note']}")
    table = Table(title="verification on the test split (against the Keras model)", title_justify="left")
    for column in ("check", "inputs", "accuracy", "keras", "drop (pt)", "max |dp|", "top-1 agree", "result"):
        table.add_column(column)
    for name, result in entry["verification"].items():
        count = result.get("test_images", result.get("test_texts", 0))
        table.add_row(
            name, f"{count} {'texts' if 'test_texts' in result else 'images'}", f"{result['test_accuracy']:.4f}", f"{result['keras_test_accuracy']:.4f}",
            f"{result['accuracy_drop'] * 100:+.1f}", f"{result['max_probability_difference']:.2e}", f"{result['top1_agreement']:.3f}",
            "[green]passed[/]" if result["passed"] else "[red]FAILED[/]",
        )
    out.print(table)
