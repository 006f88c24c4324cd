"""The words and numbers of a run and of a comparison, formatted once for the terminal and the report."""

from __future__ import annotations

from shoulders.runs import layout
from shoulders.runs.reader import Run


def items_name(task: str | None) -> str:
    """What a run (or comparison) learns from, in words: "texts" or "images"."""
    return "texts" if task == "text" else "images"


def input_size(metrics: dict) -> str:
    """What the model takes in, in words: "224 px" for images, "max 128 tokens" for texts."""
    if metrics.get("task") == "text":
        return f'max {metrics["max_length"]} tokens'
    return f'{metrics["image_size"]} px'


def _number(value) -> str:
    return "-" if value is None else f"{value:g}"


def accuracy_interval(metrics: dict) -> str:
    """ "95% CI 0.81-0.97, " (Wilson) when the run recorded it (runs from before it did: nothing)."""
    low, high = metrics.get("test_accuracy_ci95") or metrics["test"].get("accuracy_ci95") or (None, None)
    return "" if low is None or low != low else f"95% CI {low:.4f}-{high:.4f}, "


def run_summary(run: Run) -> list[tuple[str, str]]:
    """(what, value) rows of a finished run: the headline, how it was trained, what the data held."""
    metrics = run.metrics
    count, kind = metrics["test"]["count"], items_name(metrics.get("task"))
    rows = [
        ("test accuracy", f"{metrics['test_accuracy']:.4f}  ({accuracy_interval(metrics)}on {count} test {kind} no choice looked at)"),
        ("val accuracy", f"{metrics['val_accuracy']:.4f}"),
        ("test macro F1", f"{metrics['test_macro_f1']:.4f}"),
        ("backbone / strategy", f"{metrics['backbone']} / {metrics['strategy']} at {input_size(metrics)}"),
        ("epochs", f"phase 1: {metrics['epochs_phase1']}, phase 2: {metrics['epochs_phase2']} (started at epoch {metrics['phase2_start_epoch']})"),
        ("learning rates", f"phase 1: {metrics['lr_phase1']:g}, phase 2: {_number(metrics['lr_phase2'])}"),
        ("trainable params", f"phase 1: {metrics['trainable_params_phase1']:,}, phase 2: {metrics['trainable_params_phase2']:,} of {metrics['total_params']:,}"),
        ("train time", f"{metrics['train_seconds']:.1f} s (whole run {metrics['total_seconds']:.1f} s)"),
        *_compute_rows(run.read(layout.CONFIG)),
    ]
    return rows + _data_rows(run.read(layout.DATA), run.read(layout.BAD_FILES)) + [("run folder", str(run.path))]


def _compute_rows(config: dict) -> list[tuple[str, str]]:
    """Where it trained (config.json of runs from before shoulders recorded it has no such keys)."""
    if "backend" not in config:
        return []
    devices, processes = config["devices"], config["processes"]
    job = f" x {processes} processes" if processes > 1 else ""
    return [("trained on", f"{config['backend']}, {devices} device{'s' if devices > 1 else ''}{job}, {config['precision']}")]


def _data_rows(data: dict, bad: list[dict]) -> list[tuple[str, str]]:
    rows = [("data", data.get("split_note", ""))] + [("", note) for note in data.get("notes", [])]
    if bad:
        rows.append(("skipped files", f"{len(bad)} (see {layout.BAD_FILES}): " + ", ".join(b["path"] for b in bad[:3])))
    if data.get("suspicious_files"):
        flagged = data["suspicious_files"]
        shown = "; ".join(f"{f['path']} ({f['note']})" for f in flagged[:3])
        rows.append(("check these", f"{len(flagged)} kept but suspicious: {shown}"))
    if data.get("duplicates"):
        rows.append(("duplicates", f"{len(data['duplicates'])} groups found and resolved (see {layout.DATA})"))
    return rows


def accuracy_text(row: dict) -> str:
    sd = row.get("test_accuracy_sd")
    return f'{row["test_accuracy_mean"]:.4f}' + (f" ± {sd:.4f}" if sd is not None else "")


COMPARISON_COLUMNS = ("strategy", "test accuracy", "seeds", "train time (mean)", "trainable params", "total params")


def format_row(row: dict) -> list[str]:
    """One strategy's row of a comparison, as printed by the CLI and the report."""
    return [
        row["strategy"], accuracy_text(row), str(row["seeds"]), f'{row["train_seconds_mean"]:.1f} s',
        f'{row["trainable_params"]:,}', f'{row["total_params"]:,}',
    ]


def efficiency_columns(result: dict) -> list[str]:
    return ["strategy", f"{items_name(result.get('task'))} per class", "test accuracy", "seeds"]


def efficiency_rows(result: dict) -> list[list[str]]:
    """The data-efficiency curve's rows (empty without sizes)."""
    curve = result.get("curve", [])
    if not any(row["size"] != "all" for row in curve):
        return []
    return [[r["strategy"], f'{r["train_images_per_class"]:g}', accuracy_text(r), str(r["seeds"])] for r in curve]
