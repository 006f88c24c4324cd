"""`shoulders runs`: the runs an MLflow store knows (`--sync` logs runs whose tracking failed), `runs show ID`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shoulders.cli.console import add_command, stderr_console, stdout_console, user_errors
from shoulders.tracking import PENDING_FILE, default_tracking_uri, get_run, list_runs, sync_pending
from shoulders.tracking.lineage import STORE_FILE, sqlite_file

# shoulders.tracking is light (MLflow loads on first use, Keras never): importing it here costs nothing.
console = stderr_console()

TrackingUri = Annotated[str | None, typer.Option(help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///ROOT/{STORE_FILE}).")]
Root = Annotated[Path, typer.Option(help=f"The folder holding the runs (and, by default, {STORE_FILE}).")]


def register(app: typer.Typer) -> None:
    runs_app = typer.Typer(help="Runs recorded in the MLflow tracking store (lineage).", no_args_is_help=False)
    runs_app.callback(invoke_without_command=True)(user_errors(runs))
    add_command(runs_app, "show", show)
    app.add_typer(runs_app, name="runs")


def _store(tracking_uri: str | None, root: Path) -> str:
    """The store's URI; exit 1 when it is a SQLite file that does not exist (MLflow would create an empty one)."""
    uri = tracking_uri or default_tracking_uri(root=root)
    database = sqlite_file(uri)
    if database is not None and not database.exists():
        console.print(f"no tracking store at {uri}: train a run first, or pass --root / --tracking-uri.")
        raise typer.Exit(1)
    return uri


def runs(
    ctx: typer.Context,
    tracking_uri: TrackingUri = None,
    root: Root = Path("runs"),
    sync: Annotated[bool, typer.Option("--sync", help=f"First log every run under ROOT that holds {PENDING_FILE}.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many runs, newest first.")] = 50,
) -> None:
    """List runs: id, date, backbone, strategy, test accuracy, data fingerprint, compare group."""
    if ctx.invoked_subcommand is not None:
        return
    if sync:
        _sync(root, tracking_uri)
    uri = _store(tracking_uri, root)
    rows = list_runs(uri, max_results=limit)
    table = Table(title=f"Runs in {uri}", title_justify="left")
    for column in ("id", "date", "backbone", "strategy", "test accuracy", "data fingerprint", "compare group", "name"):
        table.add_column(column, no_wrap=column in ("id", "date"))
    for row in rows:
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["start_time"] / 1000))
        accuracy = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        table.add_row(row["id"], date, row["backbone"], row["strategy"], accuracy, row["dataset_fingerprint"][:12], row["compare_group"], row["name"])
    stdout_console().print(table)


def _sync(root: Path, tracking_uri: str | None) -> None:
    """Log the runs whose tracking failed; exit 1 when any still fails (after saying which)."""
    synced = sync_pending(root, tracking_uri)
    for path, _, line in synced:
        console.print(f"{path}: {line}")
    if not synced:
        console.print(f"nothing to sync: no {PENDING_FILE} under {root}")
    if any(record is None for _, record, _ in synced):
        raise typer.Exit(1)


def show(
    run_id: Annotated[str, typer.Argument(metavar="ID", help="A run id from `shoulders runs`.")],
    tracking_uri: TrackingUri = None,
    root: Root = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Everything logged for one run: params (lineage), final metrics, tags, where its artifacts are."""
    run = get_run(_store(tracking_uri, root), run_id)  # an unknown id: one red line, exit 2
    if as_json:
        typer.echo(json.dumps(run, indent=2))
        return
    table = Table(title=f"Run {run['id']} ({run['name']}, {run['status']})", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for section in ("params", "metrics", "tags"):
        for key, value in run[section].items():
            table.add_row(f"{section[:-1]}: {key}", f"{value:.4f}" if isinstance(value, float) else str(value))
    table.add_row("artifacts", run["artifact_uri"])
    stdout_console().print(table)
