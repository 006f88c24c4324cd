"""`shoulders predict`: a few inputs printed, or any number streamed to a file (see `shoulders.predicting`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shoulders.cli.console import add_command, stderr_console

console = stderr_console()


def register(app: typer.Typer) -> None:
    add_command(app, "predict", predict)


def predict(
    run_path: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")],
    inputs: Annotated[list[str] | None, typer.Argument(metavar="INPUT...", help="Image runs: image files, folders (recursive, hidden files skipped) and @list.txt files of paths. Text runs: .txt files (a text per line) and .csv/.tsv files (--text-column).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(help="Write a row per input to this .parquet, .csv or .jsonl file, streaming (default: print).", show_default=False)] = None,
    engine: Annotated[str, typer.Option(help="local, ray (Ray Data, extra shoulders\\[ray]) or spark (predict_batch_udf, extra shoulders\\[spark]).")] = "local",
    resume: Annotated[bool, typer.Option(help="Keep --out's rows and score only the inputs not in it yet.")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any input failed (its row still says why).")] = False,
    text: Annotated[list[str] | None, typer.Option("--text", help="A text to classify (text runs; repeat for more).", show_default=False)] = None,
    text_file: Annotated[Path | None, typer.Option(help="A UTF-8 file with one text per line (text runs; same as giving it as INPUT).", show_default=False)] = None,
    text_column: Annotated[str | None, typer.Option(help="Text runs' CSV/TSV inputs: the column's name (default: text), or its position in a file without header.", show_default=False)] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Labels kept per input, best first.")] = 3,
    batch_size: Annotated[int, typer.Option(min=1, help="Inputs per forward pass.")] = 32,
    ray_address: Annotated[str | None, typer.Option(envvar="RAY_ADDRESS", help="--engine ray: the cluster to join (default: a local one is started).", show_default=False)] = None,
    spark_master: Annotated[str, typer.Option(help="--engine spark: the Spark master.")] = "local[*]",
    workers: Annotated[int | None, typer.Option(min=1, help="--engine ray/spark: model copies (Ray actors, Spark partitions); default: one per CPU (per GPU on a Ray cluster with GPUs).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (without --out).")] = False,
) -> None:
    """Predict the class of each input with a trained run: print it, or with --out write a row per input
    (path or text, label, probability, top-k labels and probabilities, error, worker)."""
    from shoulders.predicting import BatchJob, Cluster, Inputs, predict_to_file

    arguments = tuple([*(inputs or []), *([str(text_file)] if text_file else [])])
    given = Inputs(arguments, text_column=text_column, texts=tuple(text or ()))
    if not arguments and not given.texts:
        raise typer.BadParameter("give image files or folders (or, for a text run, .txt/.csv files or --text)", param_hint="INPUT")
    if out is None:
        failed = _print_rows(run_path, given, top_k, batch_size, as_json)
    else:
        job = BatchJob(run_path, given, out, engine, top_k, batch_size, resume, Cluster(ray_address, spark_master, workers))
        summary = predict_to_file(job)
        failed = summary.failed
        skipped = f", {summary.skipped} already there (--resume)" if summary.skipped else ""
        console.print(f"{summary.written} rows written to {out} in {summary.seconds:.1f} s ({summary.failed} failed{skipped})")
    if failed and strict:
        raise typer.Exit(1)


def _print_rows(run_path: Path, given, top_k: int, batch_size: int, as_json: bool) -> int:
    """Without --out: every row printed (a failed input prints its error), the count of failures returned."""
    from shoulders.predicting.inputs import for_run
    from shoulders.predicting.scoring import Scorer
    from shoulders.runs.reader import load_run

    run = load_run(run_path)
    inputs = for_run(given, run.task)
    scorer, keys, rows = Scorer(run, min(top_k, len(run.classes))), list(inputs), []
    for start in range(0, len(keys), batch_size):
        rows += scorer(keys[start : start + batch_size])
    if as_json:
        typer.echo(json.dumps([_answer(row, inputs.key) for row in rows], indent=2))
    for row in [] if as_json else rows:
        shown = ", ".join(f"{label} {p:.3f}" for label, p in zip(row["top_k_labels"], row["top_k_probabilities"]))
        typer.echo(f"{row[inputs.key]}: {shown or 'error: ' + row['error']}")
    return sum(1 for row in rows if row["error"])


def _answer(row: dict, key: str) -> dict:
    top = [{"label": label, "probability": p} for label, p in zip(row["top_k_labels"], row["top_k_probabilities"])]
    return {key: row[key], "top": top, "error": row["error"]}
