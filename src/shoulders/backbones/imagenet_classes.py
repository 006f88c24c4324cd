"""The 1000 ImageNet-1k class names, in the index order every ImageNet classifier uses.

The data file is written by tools/make_imagenet_classes.py from WordNet lemmas.
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    """Short readable names ("tabby", "espresso"); index i is ImageNet class i."""
    return tuple(entry["names"][0] for entry in _entries())


@functools.cache
def _entries() -> list[dict]:
    return json.loads((files("shoulders.backbones") / "imagenet_classes.json").read_text())


def wordnet_id(index: int) -> str:
    return _entries()[index]["wnid"]
