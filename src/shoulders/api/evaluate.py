"""`evaluate_run`: a finished run on its own test split (from its folder) or on other labelled data."""

from __future__ import annotations

import os

from shoulders.api.backfill import open_run
from shoulders.evaluation.evaluate import evaluate_test_split, score
from shoulders.runs import layout
from shoulders.runs.reader import Run


def evaluate_run(run_path: str | os.PathLike, data: str | os.PathLike | None = None) -> dict:
    """Metrics of the run's model. Without ``data``: the test split recorded in the run folder.

    ``data`` is a labelled folder of images for an image run; for a text run a CSV/TSV file (or a folder of
    class subfolders of .txt files) read with the run's text and label columns, every usable row scored.
    The result adds ``source`` and ``task`` to `classification_metrics`, and ``warnings``: e.g. that
    ``data`` holds images (texts) the run trained or validated on (same content), which no honest test does.
    """
    run = open_run(run_path)
    if data is None:
        return evaluate_test_split(run)
    if run.task == "text":
        from shoulders.data.splits import text_sha256
        from shoulders.text.inputs import labelled_texts

        inputs, labels = labelled_texts(run.config, str(data), run.classes, run.name)
        hashes = [text_sha256(text) for text in inputs]
    else:
        from shoulders.image.inputs import labelled_images

        inputs, labels, hashes = labelled_images(data, run.image_size, run.crop_fraction, run.classes)
    result = score(run, inputs, labels, str(data))
    result["warnings"] = seen_warnings(run, hashes, str(data))
    return result


def seen_warnings(run: Run, hashes: list[str], data: str) -> list[str]:
    """What of ``data`` (its rows' content hashes) the run already saw in training or validation, in words."""
    kind = "texts" if run.task == "text" else "images"
    if not run.has(layout.SEEN):
        return [f"{run.path} predates {layout.SEEN}: whether {data} holds {kind} it trained on cannot be checked."]
    seen = {split: set(values) for split, values in run.read(layout.SEEN).items()}
    counts = {split: sum(value in seen.get(split, set()) for value in hashes) for split in ("train", "val")}
    total = sum(value in seen.get("train", set()) or value in seen.get("val", set()) for value in hashes)
    if total == 0:
        return []
    return [
        f"{total} of the {len(hashes)} {kind} in {data} are ones the run trained on ({counts['train']}) or validated on "
        f"({counts['val']}): same content. This score is not an honest test; evaluate on {kind} it has never seen."
    ]
