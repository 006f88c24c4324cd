"""Image loading shared by training, prediction and serving: one decode path, so they cannot disagree.

EXIF orientation applied; every colour mode to 8-bit RGB; an aspect-preserving centre crop, then a
bicubic resize, as the backbones were trained.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

MAX_PIXELS = 178_956_970  # Pillow's own decompression-bomb limit
Size = int | tuple[int, int]


class ImageDecodeError(ValueError):
    """A file (or bytes) that is not a decodable image; the message names it and what to do."""


def to_rgb(image: Image.Image) -> Image.Image:
    """Oriented 8-bit RGB from any Pillow mode (transparent pixels become white)."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _high_bit_depth_to_rgb(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, CMYK (Pillow undoes Adobe's inverted CMYK), YCbCr, LAB, HSV


def _high_bit_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float images: scale by the true bit range, not by clipping at 255."""
    pixels = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16"):
        top = 65535.0
    elif image.mode == "F":
        top = max(float(pixels.max()), 1.0) if pixels.max() > 1.0 else 1.0
    else:
        top = 65535.0 if pixels.max() > 255 else 255.0
    grey = np.clip(pixels / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")


def _target(size: Size) -> tuple[int, int]:
    """(width, height) for Pillow from an int or an (height, width) pair."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return width, height


def fit_to_size(image: Image.Image, size: Size, crop_fraction: float = 1.0) -> Image.Image:
    """Centre crop ``crop_fraction`` of the largest box with the target's aspect ratio, then bicubic resize."""
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1]. Received: {crop_fraction}")
    width, height = _target(size)
    scale = min(image.width / width, image.height / height) * crop_fraction
    box_w, box_h = min(width * scale, image.width), min(height * scale, image.height)  # no float overshoot
    left, top = (image.width - box_w) / 2, (image.height - box_h) / 2
    return image.resize((width, height), Image.Resampling.BICUBIC, box=(left, top, left + box_w, top + box_h))


def _open(source: str | os.PathLike | bytes, name: str) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageDecodeError(f"{name}: refused, too many pixels ({error}). Resize it below {MAX_PIXELS:,} pixels.") from error
    except FileNotFoundError as error:
        raise ImageDecodeError(f"{name}: no such file.") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageDecodeError(f"{name}: cannot decode as an image ({error}). Remove it or replace it with a JPEG or PNG.") from error


def _decode(image: Image.Image, name: str, size: Size | None) -> Image.Image:
    """Fully decode (so truncated files fail here), letting JPEG scale down in the DCT when much larger."""
    try:
        if size is not None and image.format == "JPEG":
            width, height = _target(size)
            image.draft("RGB", (width * 2, height * 2))  # keeps at least 2x the target: no visible loss
        image.load()
        return to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageDecodeError(f"{name}: refused, too many pixels ({error}).") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageDecodeError(f"{name}: cannot decode as an image ({error}). Remove it or replace it with a JPEG or PNG.") from error


GRAPHIC_MAX_COLOURS = 64


def graphic_warning(image: Image.Image) -> str | None:
    """A note when a file looks like a graphic (a "photo unavailable" placeholder, an icon), not a photo.

    Only palette and grayscale images are checked: counting colours is cheap there, and a real photo
    is almost never stored with a few dozen colours.
    """
    if image.mode not in ("P", "L", "1"):
        return None
    colours = image.getcolors(maxcolors=GRAPHIC_MAX_COLOURS)
    if colours is None:
        return None
    return f"only {len(colours)} distinct colours: looks like a graphic or placeholder, not a photo (kept; check it)"


def load_image(
    source: str | os.PathLike | bytes | Image.Image | np.ndarray, size: Size | None = None, crop_fraction: float = 1.0
) -> np.ndarray:
    """uint8 (H, W, 3) RGB from a path, encoded bytes, a Pillow image or a pixel array (0..255)."""
    return _load(source, size, crop_fraction)[0]


def _load(source, size: Size | None, crop_fraction: float) -> tuple[np.ndarray, str | None]:
    warning = None
    if isinstance(source, np.ndarray):
        image = Image.fromarray(_array_to_rgb(source), "RGB")
    elif isinstance(source, Image.Image):
        image = to_rgb(source)
    else:
        name = "<bytes>" if isinstance(source, bytes) else str(source)
        opened = _open(source, name)
        warning = graphic_warning(opened) if opened.mode in ("P", "L", "1") else None
        image = _decode(opened, name, size)
    if size is not None:
        image = fit_to_size(image, size, crop_fraction)
    return np.asarray(image, dtype=np.uint8), warning


def _array_to_rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    if pixels.ndim != 3 or pixels.shape[-1] not in (3, 4):
        raise ValueError(f"expected pixels shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). Received: {pixels.shape}")
    if pixels.shape[-1] == 4:
        alpha = pixels[..., 3:].astype(np.float32) / 255.0
        pixels = pixels[..., :3] * alpha + 255.0 * (1 - alpha)
    return np.clip(np.asarray(pixels, dtype=np.float32) + 0.5 * (pixels.dtype.kind == "f"), 0, 255).astype(np.uint8)


def decode_many(
    paths: Sequence[Path],
    size: Size,
    crop_fraction: float = 1.0,
    out: np.ndarray | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, list[tuple[int, str]], list[tuple[int, str]]]:
    """Decode files into ``out`` (N, H, W, 3) uint8 in a thread pool (Pillow releases the GIL).

    Never raises for a bad file: returns (array, [(index, reason)], [(index, warning)]) so every
    failure, and every decoded file that looks like a graphic rather than a photo, is reported.
    """
    width, height = _target(size)
    if out is None:
        out = np.zeros((len(paths), height, width, 3), dtype=np.uint8)
    failures: list[tuple[int, str]] = []
    warnings_found: list[tuple[int, str]] = []

    def work(index: int) -> None:
        try:
            out[index], warning = _load(paths[index], size, crop_fraction)
            if warning:
                warnings_found.append((index, warning))
        except ImageDecodeError as error:
            failures.append((index, str(error)))
        except (OSError, ValueError) as error:  # anything else one file can throw: report it, keep going
            failures.append((index, f"{paths[index]}: {error}"))

    columns = (TextColumn("Decoding images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, disable=not (progress and console.is_terminal), transient=True) as bar, ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        task = bar.add_task("decode", total=len(paths))
        for _ in pool.map(work, range(len(paths))):
            bar.advance(task)
    return out, sorted(failures), sorted(warnings_found)
