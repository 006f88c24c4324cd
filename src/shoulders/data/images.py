"""Image loading shared by training, prediction and serving: one decode path, so they cannot disagree.

EXIF orientation applied; every colour mode to 8-bit RGB; an aspect-preserving centre crop, then a
bicubic resize, as the backbones were trained.
"""

from __future__ import annotations

import io
import math
import operator
import os
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shoulders.errors import ShouldersError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
MAX_PIXELS = 178_956_970  # Pillow's own decompression-bomb limit; read at call time, so it can be lowered
GRAPHIC_MAX_COLOURS = 64
Size = int | tuple[int, int]

# Pillow's format plugins raise all of these on corrupt data; each means "this file", never "this program".
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
    Image.DecompressionBombError,
)
_FIX = "Remove it or replace it with a JPEG or PNG."


class ImageDecodeError(ShouldersError, ValueError):
    """A file (or bytes) that is not a decodable image; the message names it and what to do."""


class ImageOptionError(ShouldersError, ValueError):
    """An image size, crop fraction or output array that cannot work; the message gives a good value."""


class PixelArrayError(ShouldersError, ValueError):
    """A pixel array of the wrong shape, type or range (e.g. already normalised); the message says which."""


def to_rgb(image: Image.Image) -> Image.Image:
    """Oriented 8-bit RGB from any Pillow mode (transparent pixels become white)."""
    image = _oriented(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _high_bit_depth_to_rgb(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK (Pillow undoes Adobe's inverted CMYK), YCbCr, LAB, HSV


def _oriented(image: Image.Image) -> Image.Image:
    """Upright as a photo viewer shows it; a broken EXIF block must not make a good photo unusable."""
    try:
        return ImageOps.exif_transpose(image)
    except (SyntaxError, ValueError, KeyError, TypeError, struct.error):
        return image


def _high_bit_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float images: scale by the true bit range, not by clipping at 255.

    Integers are divided by the top of their container (16-bit modes by 65535; mode "I" by the
    smallest of 8, 16 or 32 bits that holds its values), so a dark scan stays dark. Floats in 0..1
    are scaled by 255; larger floats by their maximum.
    """
    pixels = np.nan_to_num(np.asarray(image).astype(np.float64))
    if image.mode.startswith("I;16"):
        top = 65535.0
    elif image.mode == "F":
        top = max(float(pixels.max()), 1.0)
    elif pixels.min() < 0:
        pixels, top = pixels + 2.0**31, 2.0**32 - 1  # signed 32-bit
    else:
        top = next(2.0**bits - 1 for bits in (8, 16, 32) if pixels.max() < 2.0**bits)
    grey = np.clip(pixels / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")


def height_and_width(size: Size) -> tuple[int, int]:
    """(height, width) from an int or an (height, width) pair, validated: the shape of a decoded image."""
    return _target(size)[::-1]


def _target(size: Size) -> tuple[int, int]:
    """(width, height) for Pillow from an int or an (height, width) pair."""
    try:
        pair = size if isinstance(size, (tuple, list)) else (size, size)
        height, width = map(operator.index, pair)
    except (TypeError, ValueError):
        height = width = 0
    if isinstance(size, bool) or height < 1 or width < 1:
        raise ImageOptionError(
            f"image size must be a positive int or an (height, width) pair of them, e.g. 224. Received: {size!r}"
        )
    return width, height


def _check_crop_fraction(crop_fraction: float) -> None:
    if not 0 < crop_fraction <= 1:
        raise ImageOptionError(f"crop_fraction must be in (0, 1], e.g. 0.875 or 1.0 for no crop. Received: {crop_fraction}")


def _crop_box(width: int, height: int, size: Size, crop_fraction: float) -> tuple[float, float, float, float]:
    """``crop_fraction`` of the largest centred box with the target's aspect ratio."""
    target_width, target_height = _target(size)
    scale = min(width / target_width, height / target_height) * crop_fraction
    box_w, box_h = min(target_width * scale, width), min(target_height * scale, height)  # no float overshoot
    left, top = (width - box_w) / 2, (height - box_h) / 2
    return left, top, left + box_w, top + box_h


def fit_to_size(image: Image.Image, size: Size, crop_fraction: float = 1.0) -> Image.Image:
    """Centre crop ``crop_fraction`` of the largest box with the target's aspect ratio, then bicubic resize."""
    _check_crop_fraction(crop_fraction)
    box = _crop_box(image.width, image.height, size, crop_fraction)
    return image.resize(_target(size), Image.Resampling.BICUBIC, box=box)


def _draft(image: Image.Image, size: Size, crop_fraction: float) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale (DCT scaling: several times faster) when the photo is
    much larger than needed, keeping at least twice the target's pixels across the crop so quality holds.

    Both orientations are checked because EXIF may still turn the photo by 90 degrees.
    """
    if not isinstance(image, JpegImagePlugin.JpegImageFile):
        return
    target_width, target_height = _target(size)
    scale = 0.0
    for width, height in (image.size, image.size[::-1]):
        left, top, right, bottom = _crop_box(width, height, size, crop_fraction)
        scale = max(scale, 2 * target_width / (right - left), 2 * target_height / (bottom - top))
    if scale < 0.5:  # draft only ever reduces by 2, 4 or 8
        image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))


def _reason(error: BaseException) -> str:
    if isinstance(error, Image.DecompressionBombError):
        return f"refused, too many pixels ({error}). Resize it below {MAX_PIXELS:,} pixels, or remove it."
    if isinstance(error, FileNotFoundError):
        return "no such file. Check the path."
    if isinstance(error, Image.UnidentifiedImageError):
        return f"cannot decode as an image (not a recognised image format). {_FIX}"
    return f"cannot decode as an image ({error or type(error).__name__}). {_FIX}"


def _check_pixels(image: Image.Image) -> None:
    pixels = image.width * image.height
    if pixels > MAX_PIXELS:
        raise Image.DecompressionBombError(f"{image.width}x{image.height} = {pixels:,} pixels, limit {MAX_PIXELS:,}")


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
    _check_crop_fraction(crop_fraction)
    if size is not None:
        _target(size)
    if isinstance(source, np.ndarray):
        return _finish(Image.fromarray(_array_to_rgb(source), "RGB"), size, crop_fraction), None
    if isinstance(source, Image.Image):
        return _finish(to_rgb(source), size, crop_fraction), None
    name = "<bytes>" if isinstance(source, bytes) else os.fspath(source)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            _check_pixels(image)
            if size is not None:
                _draft(image, size, crop_fraction)
            image.load()  # fully decode here, so truncated files fail here
            warning = graphic_warning(image)
            return _finish(to_rgb(image), size, crop_fraction), warning
    except _DECODE_ERRORS as error:
        raise ImageDecodeError(f"{name}: {_reason(error)}") from error


def _finish(image: Image.Image, size: Size | None, crop_fraction: float) -> np.ndarray:
    if size is not None:
        image = fit_to_size(image, size, crop_fraction)
    return np.asarray(image, dtype=np.uint8)


def _array_to_rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    if pixels.ndim != 3 or pixels.shape[-1] not in (3, 4):
        raise PixelArrayError(f"expected pixels shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). Received: {pixels.shape}")
    _check_pixel_values(pixels)
    if pixels.shape[-1] == 4:
        alpha = pixels[..., 3:].astype(np.float32) / 255.0
        pixels = pixels[..., :3] * alpha + 255.0 * (1 - alpha)
    return np.clip(np.asarray(pixels, dtype=np.float32) + 0.5 * (pixels.dtype.kind == "f"), 0, 255).astype(np.uint8)


def _check_pixel_values(pixels: np.ndarray) -> None:
    """Raw 0..255 pixels only: an array already normalised (-1..1, ImageNet mean/std) would be silently wrong."""
    if pixels.dtype == np.uint8:
        return
    if pixels.dtype.kind not in "iuf":
        raise PixelArrayError(f"expected uint8 or float pixels in 0..255. Received dtype {pixels.dtype}.")
    if pixels.size and not (np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 255):
        raise PixelArrayError(
            f"expected raw pixel values in 0..255. Received values from {pixels.min()} to {pixels.max()}: pass the "
            "image before any normalisation (the model normalises for its backbone itself)."
        )


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
    Rows of files that failed are zeros.
    """
    width, height = _target(size)
    _check_crop_fraction(crop_fraction)
    if out is None:
        out = np.zeros((len(paths), height, width, 3), dtype=np.uint8)
    if out.shape != (len(paths), height, width, 3) or out.dtype != np.uint8:
        raise ImageOptionError(f"out must be uint8 shaped {(len(paths), height, width, 3)}. Received: {out.dtype} {out.shape}")
    failures: list[tuple[int, str]] = []
    warnings_found: list[tuple[int, str]] = []

    def work(index: int) -> None:
        try:
            out[index], warning = _load(paths[index], size, crop_fraction)
            if warning:
                warnings_found.append((index, warning))
        except ImageDecodeError as error:
            out[index] = 0
            failures.append((index, str(error)))

    columns = (TextColumn("Decoding images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, disable=not (progress and console.is_terminal), transient=True) as bar, ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        task = bar.add_task("decode", total=len(paths))
        for _ in pool.map(work, range(len(paths))):
            bar.advance(task)
    return out, sorted(failures), sorted(warnings_found)


THUMBNAIL_SIZE = 112


def thumbnail(pixels: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """A uint8 RGB image shrunk (or grown, without blur when tiny) to ``size`` x ``size`` for a gallery."""
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    resample = Image.Resampling.NEAREST if image.width < size // 2 else Image.Resampling.BILINEAR
    return np.asarray(image.resize((size, size), resample))

