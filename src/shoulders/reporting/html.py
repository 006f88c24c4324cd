"""report.html for a run and for a comparison: one self-contained file (inline CSS, base64 PNGs), so it
can be mailed, attached to a ticket or opened years later without this package or a network."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from shoulders.reporting import figures
from shoulders.reporting.summary import (
    COMPARISON_COLUMNS,
    accuracy_interval,
    efficiency_columns,
    efficiency_rows,
    format_row,
    items_name,
    run_summary,
)
from shoulders.runs import layout
from shoulders.runs.reader import ReferenceMissingError, Run, load_comparison, load_run

REPORT_FILE = layout.REPORT
GALLERY_SIZE = layout.THUMBNAIL_COUNT
ERROR_TEXT_LIMIT = 600  # characters of a text shown in the worst-errors table (a review can be pages long)
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 10px;text-align:left;font-size:14px}
th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}.note{color:#555;font-size:14px}
.headline{font-size:20px;background:#eef5ee;padding:10px 14px;border-radius:6px;display:inline-block}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;border-radius:6px;padding:6px;width:150px;font-size:12px}
.card img{width:140px;height:140px;image-rendering:auto}.bad{color:#b00}code{font-size:12px;word-break:break-all}
td.text{max-width:640px;white-space:pre-wrap;overflow-wrap:anywhere}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _img(png: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{png}">'


def _table(header: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if i >= numeric_from else ""}">{_e(c)}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, sections: list[str]) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>{''.join(sections)}</body></html>"
    )


def run_report(run_path: str | os.PathLike) -> str:
    """The run's page: headline, curves, confusion matrix, per-class table, worst errors, data, lineage."""
    run = load_run(run_path)
    metrics, test = run.metrics, run.metrics["test"]
    text = run.task == "text"
    sections = [
        f'<p class="headline">test accuracy <b>{metrics["test_accuracy"]:.4f}</b> ({accuracy_interval(metrics)}on {test["count"]} test '
        f'{items_name(run.task)} no choice looked at) &middot; macro F1 {metrics["test_macro_f1"]:.4f} &middot; val accuracy {metrics["val_accuracy"]:.4f}</p>',
        _table(["what", "value"], [list(row) for row in run_summary(run)], numeric_from=9),
        "<h2>Training curves</h2>",
        _img(figures.training_curves(run.history, metrics.get("phase2_start_epoch")), "training curves"),
        _curves_note(metrics),
        "<h2>Confusion matrix (test)</h2>",
        _img(figures.confusion_matrix(test["confusion_matrix"], run.classes), "confusion matrix"),
        "<h2>Per-class metrics (test)</h2>",
        _table(
            ["class", "precision", "recall", "F1", "support"],
            [[name, f'{r["precision"]:.3f}', f'{r["recall"]:.3f}', f'{r["f1"]:.3f}', r["support"]] for name, r in test["per_class"].items()],
        ),
        f'<p class="note">Expected calibration error: {test.get("expected_calibration_error", float("nan")):.3f} (0 is perfectly calibrated).</p>',
        "<h2>Worst test errors</h2>",
        _worst_texts(metrics) if text else _gallery(run),
        "<h2>Data</h2>",
        _data_section(run.read(layout.DATA), run.read(layout.BAD_FILES), text),
        "<h2>Lineage</h2>",
        _lineage_section(run.path, run.read(layout.CONFIG), metrics, run.read(layout.DATA)),
    ]
    return _page(f"shoulders run {run.name}", sections)


def _curves_note(metrics: dict) -> str:
    if metrics.get("phase2_start_epoch") is None:
        return f'<p class="note">One phase ({_e(metrics["strategy"])}): no fine-tuning start to mark.</p>'
    return (
        '<p class="note">Both phases on one axis; the dashed line marks where the top blocks were unfrozen '
        "and fine-tuning began at the lower learning rate.</p>"
    )


def worst_errors(metrics: dict) -> list[dict]:
    """The misclassified test predictions, most confident first: where the model is wrong and sure of it."""
    errors = [p for p in metrics.get("test_predictions", []) if p["true"] != p["predicted"]]
    return sorted(errors, key=lambda p: -p["confidence"])


def _worst_texts(metrics: dict) -> str:
    """The worst errors of a text run as a table: the texts are in metrics.json, so no data is re-read."""
    errors = worst_errors(metrics)
    if not errors:
        return '<p class="note">No test text was misclassified.</p>'
    rows = "".join(
        f'<tr><td class="text">{_e(_shorten(p.get("text", "(text not recorded)")))}</td><td>{_e(p["true"])}</td>'
        f'<td class="bad">{_e(p["predicted"])}</td><td class="num">{p["confidence"]:.3f}</td><td><code>{_e(p["file"])}</code></td></tr>'
        for p in errors[:GALLERY_SIZE]
    )
    shown = f"{min(len(errors), GALLERY_SIZE)} of {len(errors)}"
    return (
        f'<p class="note">{shown} misclassified test texts, most confident first.</p><table class="errors">'
        f"<tr><th>text</th><th>true</th><th>predicted</th><th>confidence</th><th>row</th></tr>{rows}</table>"
    )


def _shorten(text: str) -> str:
    return text if len(text) <= ERROR_TEXT_LIMIT else text[:ERROR_TEXT_LIMIT].rstrip() + " …"


def _gallery(run: Run) -> str:
    """The misclassified test images as thumbnails, most confident first (from the run folder's errors.npz)."""
    errors = worst_errors(run.metrics)
    if not errors:
        return '<p class="note">No test image was misclassified.</p>'
    try:
        stored = run.arrays(layout.ERROR_THUMBNAILS)
    except ReferenceMissingError as error:  # an older run folder: the numbers still stand, only the thumbnails are missing
        rows = [[p["file"], p["true"], p["predicted"], f'{p["confidence"]:.3f}'] for p in errors[:GALLERY_SIZE]]
        return f'<p class="note">Images unavailable ({_e(error)}).</p>' + _table(["file", "true", "predicted", "confidence"], rows, 9)
    thumbnail_of = dict(zip(stored["names"].tolist(), stored["images"]))
    cards = []
    for prediction in errors[:GALLERY_SIZE]:
        pixels = thumbnail_of.get(prediction["file"])
        picture = _img(figures.image_png(pixels), prediction["file"]) if pixels is not None else "(image missing)"
        cards.append(
            f'<div class="card">{picture}<div><code>{_e(prediction["file"])}</code></div>'
            f'<div>true: <b>{_e(prediction["true"])}</b></div><div class="bad">predicted: <b>{_e(prediction["predicted"])}</b></div>'
            f'<div>confidence {prediction["confidence"]:.3f}</div></div>'
        )
    shown = f"{min(len(errors), GALLERY_SIZE)} of {len(errors)}"
    return f'<p class="note">{shown} misclassified test images, most confident first.</p><div class="gallery">{"".join(cards)}</div>'


def _data_section(data: dict, bad_files: list[dict], text: bool = False) -> str:
    counts = data.get("class_counts", {})
    splits = [s for s in ("train", "val", "test") if s in counts] + [s for s in counts if s not in ("train", "val", "test")]
    classes = data.get("classes") or (list(next(iter(counts.values()))) if counts else [])
    rows = [[name, *(counts[split].get(name, 0) for split in splits)] for name in classes]
    parts = [f'<p class="note">{_e(data.get("split_note", ""))} Source: <code>{_e(data.get("source", ""))}</code>; fingerprint <code>{_e(data.get("fingerprint", ""))}</code>.</p>']
    parts += [f'<p class="note">{_e(note)}</p>' for note in data.get("notes", [])]
    parts.append(_table(["class", *splits], rows))
    parts.append(f"<p>Skipped {'(unusable) rows' if text else '(unreadable) files'}: {len(bad_files)}</p>")
    if bad_files:
        parts.append(_table(["row" if text else "file", "reason"], [[b["path"], b["reason"]] for b in bad_files], 9))
    suspicious = data.get("suspicious_files", [])
    if not text:  # only the image loader flags files it keeps but doubts
        parts.append(f"<p>Kept but suspicious: {len(suspicious)}</p>")
    if suspicious:
        parts.append(_table(["file", "why"], [[s["path"], s["note"]] for s in suspicious], 9))
    duplicates = data.get("duplicates", [])
    parts.append(f"<p>Exact duplicates found and resolved: {len(duplicates) if isinstance(duplicates, list) else duplicates}</p>")
    if isinstance(duplicates, list) and duplicates:
        parts.append(_table(["kind", "kept", "dropped"], [[d["kind"], d["kept"], ", ".join(d["dropped"])] for d in duplicates], 9))
    return "".join(parts)


def _lineage_section(path: Path, config: dict, metrics: dict, data: dict) -> str:
    from shoulders.tracking.lineage import default_tracking_uri, pretrained_weights

    rows = [
        ["run folder", str(path.resolve())],
        ["backbone", config["backbone"]],
        ["pretrained weights", pretrained_weights(config, metrics, _weights_origin(config))],
        ["weights sha256", metrics.get("weights_sha256") or "none"],
        ["dataset fingerprint", data.get("fingerprint", "")],
        ["seed", config["seed"]],
        ["learning rates", f'phase 1: {metrics.get("lr_phase1")}, phase 2: {metrics.get("lr_phase2")}'],
        ["unfrozen blocks", ", ".join(metrics.get("unfrozen_blocks") or []) or "none"],
        ["fine-tuning started at epoch", metrics.get("phase2_start_epoch")],
        ["package versions", ", ".join(f"{k} {v}" for k, v in config.get("versions", {}).items())],
        ["MLflow store (default)", default_tracking_uri(path)],
    ]
    full = html.escape(json.dumps({k: v for k, v in config.items() if k != "versions"}, indent=1))
    return _table(["what", "value"], rows, 9) + f"<details><summary>config.json</summary><pre>{full}</pre></details>"


def _weights_origin(config: dict) -> str | None:
    """Where a registered text encoder's weights come from, for the lineage table (None if unknown)."""
    from shoulders import backbones

    try:
        return backbones.get(config["backbone"]).weights_origin
    except KeyError:  # UnknownBackboneError: a run of a backbone this install does not register
        return None


def compare_report(folder: str | os.PathLike) -> str:
    """The comparison's page: the table (mean +- sd over seeds), the bars, the data-efficiency curve, the runs."""
    result = load_comparison(folder)
    table = result.get("table", [])
    sections = [
        f'<p class="note">Data <code>{_e(result["data"])}</code>, backbone {_e(result["backbone"])}, seeds '
        f'{_e(result["seeds"])}; every strategy trained on the same split per seed and scored on the same test set. '
        f'Status: {_e(result["status"])}.</p>',
        "<h2>Strategies</h2>",
        _table(list(COMPARISON_COLUMNS), [format_row(row) for row in table]),
    ]
    if table:
        sections.append(_img(figures.comparison_bars(table), "test accuracy by strategy"))
    sections.append(f'<p class="note">{_e(result.get("note", ""))}</p>')
    if efficiency := efficiency_rows(result):
        sections += [
            "<h2>Data efficiency</h2>",
            _table(efficiency_columns(result), efficiency),
            _img(figures.efficiency_curve(result["curve"], items_name(result.get("task"))), "data efficiency curve"),
        ]
    runs = [
        [Path(r["path"]).name, r["strategy"], r["seed"], r["size"], f'{r["test_accuracy"]:.4f}', f'{r["train_seconds"]:.1f} s']
        for r in result.get("runs", [])
    ]
    sections += ["<h2>Runs</h2>", _table(["run (its own report.html inside)", "strategy", "seed", "size", "test accuracy", "train time"], runs, 2)]
    return _page(f"shoulders comparison {result['name']}", sections)


def write_run_report(run_path: str | os.PathLike) -> Path:
    path = Path(run_path) / REPORT_FILE
    _write(path, run_report(run_path))
    return path


def write_compare_report(folder: str | os.PathLike) -> Path:
    path = Path(folder) / REPORT_FILE
    _write(path, compare_report(folder))
    return path


def _write(path: Path, text: str) -> None:
    temporary = path.with_suffix(".html.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
