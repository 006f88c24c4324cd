"""Request bodies for the serving tests: good images and each kind of bad one."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def pixels(colour=(200, 30, 30), size=(40, 40)) -> np.ndarray:
    """A noisy colour photo like the tiny run's training images (tests/conftest.py make_colour_folder)."""
    noise = np.random.default_rng(1).normal(0, 25, size=(size[1], size[0], 3))
    return np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)


def png(colour=(200, 30, 30), size=(40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels(colour, size)).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb() -> bytes:
    """A few kB of PNG that claims 15,000 x 15,000 pixels (225 megapixels) once decoded."""
    buffer = io.BytesIO()
    Image.new("1", (15_000, 15_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


# (name, route, request kwargs for httpx, expected status)
MALFORMED = [
    ("not an image", "/predict", {"content": b"this is not an image"}, 400),
    ("truncated image", "/predict", {"content": png()[:60]}, 400),
    ("empty body", "/predict", {"content": b""}, 400),
    ("multipart without a file", "/predict", {"data": {"note": "no file"}, "files": {"other": ("", b"")}}, 400),
    ("invalid JSON", "/v1/models/default:predict", {"content": b"{not json"}, 400),
    ("wrong JSON shape", "/v1/models/default:predict", {"json": {"images": [1, 2]}}, 400),
    ("wrong pixel shape", "/v1/models/default:predict", {"json": {"instances": [[1, 2, 3]]}}, 400),
    ("wrong dtype", "/v1/models/default:predict", {"json": {"instances": [[[["a", "b", "c"]]]]}}, 400),
    ("booleans as pixels", "/v1/models/default:predict", {"json": {"instances": [[[[True, False, True]]]]}}, 400),
    ("pixels out of range", "/v1/models/default:predict", {"json": {"instances": [np.full((4, 4, 3), 300).tolist()]}}, 400),
    ("ragged pixels", "/v1/models/default:predict", {"json": {"instances": [[[[1, 2, 3]], [[1, 2]]]]}}, 400),
    ("bad base64", "/v1/models/default:predict", {"json": {"instances": [{"b64": "@@@"}]}}, 400),
    ("b64 not an image", "/v1/models/default:predict", {"json": {"instances": [b64(b"GIF89a broken")]}}, 400),
    ("unknown model", "/v1/models/nope:predict", {"json": {"instances": [b64(png())]}}, 404),
    ("text JSON to an image run", "/predict", {"json": {"text": "a fine film"}}, 415),
    ("text instances to an image run", "/v1/models/default:predict", {"json": {"instances": ["a fine film"]}}, 400),
]
