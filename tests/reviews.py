"""Tiny generated sentiment tables for the text tests (a plain module: test files import it)."""

import csv
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


POSITIVE = ("a wonderful, moving film", "great acting and a clever plot", "i loved every minute of it",
            "brilliant, funny and warm", "a delightful surprise", "beautifully shot and deeply felt")
NEGATIVE = ("a dull, lifeless film", "terrible acting and a stupid plot", "i hated every minute of it",
            "boring, tedious and cold", "a painful waste of time", "ugly to look at and badly written")


def make_review_table(path: Path, per_class: int = 30, seed: int = 0, sep: str = "\t") -> Path:
    """A tiny two-class sentiment table (columns text, label): easy for a pretrained encoder, distinct rows."""
    rng = np.random.default_rng(seed)
    fillers = ("really", "honestly", "truly", "simply", "quite", "just", "so", "very", "rather", "pretty")
    rows = []
    for label, phrases in (("positive", POSITIVE), ("negative", NEGATIVE)):
        for index in range(per_class):
            words = " ".join(rng.choice(fillers, size=2))
            rows.append([f"{words} {phrases[index % len(phrases)]} ({index})", label])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=sep, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path
