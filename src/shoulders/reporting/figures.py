"""The report's pictures, as base64 PNG strings (so report.html is one self-contained file)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: reports are written by servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from shoulders.data.images import THUMBNAIL_SIZE, thumbnail  # noqa: E402

CURVES = (("loss", "val_loss", "loss"), ("accuracy", "val_accuracy", "accuracy"))


def figure_png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def image_png(pixels: np.ndarray, size: int = THUMBNAIL_SIZE) -> str:
    """A uint8 RGB image as a small PNG thumbnail."""
    image = Image.fromarray(thumbnail(pixels, size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def training_curves(history: Sequence[dict], finetune_start: int | None) -> str:
    """Loss and accuracy per epoch across both phases; a dashed line where fine-tuning starts."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    epochs = [entry["epoch"] + 1 for entry in history]
    for axis, (train_key, val_key, title) in zip(axes, CURVES):
        for key, label, style in ((train_key, "train", "-"), (val_key, "validation", "-")):
            values = [entry.get(key) for entry in history]
            if any(v is not None for v in values):
                axis.plot(epochs, [np.nan if v is None else v for v in values], style, marker="o", markersize=3, label=label)
        if finetune_start is not None:
            axis.axvline(finetune_start + 0.5, color="black", linestyle="--", linewidth=1.2, label="fine-tuning starts")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return figure_png(figure)


def confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """Counts, rows = true class, columns = predicted; the diagonal is what went right."""
    values = np.asarray(matrix)
    side = max(3.5, 0.45 * len(classes) + 2)
    figure, axis = plt.subplots(figsize=(side + 1, side))
    shown = axis.imshow(values, cmap="Blues")
    figure.colorbar(shown, ax=axis, fraction=0.046)
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if len(classes) <= 20:
        threshold = values.max() / 2 if values.size else 0
        for (row, column), count in np.ndenumerate(values):
            axis.text(column, row, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    axis.set_title("confusion matrix (test)")
    return figure_png(figure)


def comparison_bars(table: Sequence[dict]) -> str:
    """Test accuracy per strategy, with the sd over seeds as error bars."""
    figure, axis = plt.subplots(figsize=(6.5, 3.5))
    names = [row["strategy"] for row in table]
    means = [row["test_accuracy_mean"] for row in table]
    errors = [row["test_accuracy_sd"] or 0.0 for row in table]
    axis.bar(names, means, yerr=errors, capsize=6, color=["#4c72b0", "#55a868", "#c44e52", "#8172b2"][: len(names)])
    for index, mean in enumerate(means):
        axis.text(index, mean + 0.01, f"{mean:.3f}", ha="center", va="bottom")
    axis.set_ylim(0, 1.08)
    axis.set_ylabel("test accuracy")
    axis.grid(axis="y", alpha=0.3)
    return figure_png(figure)


def efficiency_curve(curve: Sequence[dict], items: str = "images") -> str:
    """Test accuracy vs training ``items`` (images or texts) per class, one line per strategy (sd as a band)."""
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    for strategy in dict.fromkeys(row["strategy"] for row in curve):
        rows = sorted((row for row in curve if row["strategy"] == strategy), key=lambda row: row["train_images_per_class"])
        x = np.array([row["train_images_per_class"] for row in rows])
        y = np.array([row["test_accuracy_mean"] for row in rows])
        sd = np.array([row["test_accuracy_sd"] or 0.0 for row in rows])
        axis.plot(x, y, marker="o", label=strategy)
        axis.fill_between(x, y - sd, y + sd, alpha=0.2)
    axis.set_xscale("log")
    axis.set_xlabel(f"training {items} per class (log scale)")
    axis.set_ylabel("test accuracy")
    axis.set_ylim(0, 1.05)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title("data efficiency: same test set at every size")
    return figure_png(figure)
