"""Turning untrusted request bodies into pixels, with limits: every bad input is a 4xx with a message.

Images are decoded by `shoulders.data.images.load_image`, the same path training used, after a cheap
header check of the pixel count (a small PNG can claim 50,000 x 50,000 pixels: a decompression bomb).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image
from starlette.requests import Request

from shoulders.config import check_number
from shoulders.data.images import ImageDecodeError, load_image
from shoulders.serving.errors import RequestError

IMAGE_TAKES = "send an image as the raw body or as a multipart field named 'file'"


@dataclass(frozen=True)
class Limits:
    """What one request may hold; past any of these the client gets a 413 that names the limit."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000  # a 40-megapixel photo; a decoded RGB image of that size is 120 MB
    max_instances: int = 64
    max_texts: int = 64  # text runs: texts per request
    max_text_chars: int = 20_000  # text runs: a long article; the model reads only its first max_length tokens

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            check_number(f"Limits.{name}", value, low=1, whole=True)


async def read_body(request: Request, limits: Limits) -> bytes:
    """The whole body, refused with 413 as soon as it passes the cap (never buffered past it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise RequestError(413, f"request body of {int(declared):,} bytes is over the limit of {limits.max_body_bytes:,}; send a smaller image.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise RequestError(413, f"request body is over the limit of {limits.max_body_bytes:,} bytes; send a smaller image.")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's form()/json() parse this cached body instead of the spent stream
    return body


def parse_json(body: bytes, takes: str) -> object:
    """The JSON of a request body; any malformed body (not UTF-8, not JSON, nested past Python's recursion
    limit) is a 400 that says what ``takes`` describes, never a 500."""
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise RequestError(415, f"received binary data (an image?), not JSON text; {takes}.") from None
    except json.JSONDecodeError as error:
        raise RequestError(400, f"body is not valid JSON ({error}); {takes}.") from None
    except RecursionError:
        raise RequestError(400, f"body nests JSON too deeply to read; {takes}.") from None


async def upload_bytes(request: Request, limits: Limits) -> bytes:
    """Image bytes from a multipart upload (field ``file``, or the first file) or from the raw body."""
    body = await read_body(request, limits)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/json", "text/")):
        raise RequestError(415, f"received {content_type.split(';')[0]}; this run classifies images: {IMAGE_TAKES}.")
    if not content_type.startswith("multipart/form-data"):
        if not body:
            raise RequestError(400, "empty body: send an image as the raw body or as a multipart field named 'file'.")
        return body
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception as error:  # python-multipart and Starlette raise several types for a broken form
        raise RequestError(400, f"malformed multipart body ({error}); send one image in a field named 'file'.") from None
    files = [value for value in form.values() if hasattr(value, "read")]
    upload = form.get("file") if hasattr(form.get("file"), "read") else (files[0] if files else None)
    if upload is None:
        raise RequestError(400, "the multipart form holds no file: send the image in a field named 'file'.")
    return await upload.read()


def decode_image(data: bytes, size: int, crop_fraction: float, limits: Limits) -> np.ndarray:
    """uint8 (size, size, 3) pixels from encoded bytes, or a `RequestError`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:  # reads the header only
                width, height = probe.size
    except Image.DecompressionBombError as error:
        raise RequestError(413, f"image refused: {error}. Send an image under {limits.max_pixels:,} pixels.") from None
    except Exception:
        width = height = 0  # not recognised here: load_image gives the precise reason below
    if width * height > limits.max_pixels:
        raise RequestError(413, f"image of {width}x{height} = {width * height:,} pixels is over the limit of {limits.max_pixels:,}; resize it first.")
    try:
        return load_image(data, size, crop_fraction)
    except ImageDecodeError as error:
        status = 413 if "too many pixels" in str(error) else 400
        reason = str(error).removeprefix("<bytes>: ").replace("Remove it or replace it with", "Send")
        raise RequestError(status, f"not a usable image: {reason}") from None


def decode_instances(payload: object, size: int, crop_fraction: float, limits: Limits) -> np.ndarray:
    """TF Serving's row format: {"instances": [...]}, each a pixel array (H, W, 3) in 0..255 or {"b64": ...}
    (also accepted: one named input, {"images": {"b64": ...}}, and the columnar {"inputs": [...]})."""
    if not isinstance(payload, dict) or not any(key in payload for key in ("instances", "inputs")):
        raise RequestError(400, 'expected a JSON object {"instances": [...]}, each instance a pixel array (H, W, 3) or {"b64": "<base64 image>"}.')
    instances = payload.get("instances", payload.get("inputs"))
    if isinstance(instances, dict) and len(instances) == 1:
        instances = next(iter(instances.values()))
    if not isinstance(instances, list) or not instances:
        raise RequestError(400, '"instances" must be a non-empty list of pixel arrays or {"b64": ...} objects.')
    if len(instances) > limits.max_instances:
        raise RequestError(413, f"{len(instances)} instances is over the limit of {limits.max_instances} per request; split the request.")
    return np.stack([_instance(value, index, size, crop_fraction, limits) for index, value in enumerate(instances)])


def _instance(value: object, index: int, size: int, crop_fraction: float, limits: Limits) -> np.ndarray:
    if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value.values())), dict):
        value = next(iter(value.values()))  # a named input: {"images": {"b64": ...}}
    if isinstance(value, dict):
        if not isinstance(value.get("b64"), str):
            raise RequestError(400, f'instance {index}: an object must be {{"b64": "<base64 image>"}}. Received keys: {sorted(value)}')
        try:
            data = base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, f"instance {index}: b64 is not valid base64.") from None
        return _with_index(index, lambda: decode_image(data, size, crop_fraction, limits))
    if isinstance(value, str):
        raise RequestError(400, f'instance {index}: a string; this run classifies images: send a pixel array (H, W, 3) or {{"b64": ...}}.')
    if not isinstance(value, list):
        raise RequestError(400, f"instance {index}: expected a pixel array (H, W, 3) or {{\"b64\": ...}}. Received: {type(value).__name__}")
    try:
        pixels = np.asarray(value)
    except ValueError:
        raise RequestError(400, f"instance {index}: ragged pixel array; every row must have the same length.") from None
    if pixels.dtype.kind not in "iuf":
        raise RequestError(400, f"instance {index}: pixels must be numbers in 0..255. Received dtype {pixels.dtype}.")
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise RequestError(400, f"instance {index}: expected pixels shaped (H, W, 3). Received: {pixels.shape}")
    if pixels.shape[0] * pixels.shape[1] > limits.max_pixels:
        raise RequestError(413, f"instance {index}: {pixels.shape[0]}x{pixels.shape[1]} pixels is over the limit of {limits.max_pixels:,}.")
    return _with_index(index, lambda: load_image(pixels, size, crop_fraction))


def _with_index(index: int, decode) -> np.ndarray:
    try:
        return decode()
    except RequestError as error:
        raise RequestError(error.status, f"instance {index}: {error.message}") from None
    except ValueError as error:  # load_image's own checks (value range, shape)
        raise RequestError(400, f"instance {index}: {error}") from None
