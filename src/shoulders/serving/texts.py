"""Turning untrusted JSON into texts for a text run, with limits: every bad input is a 4xx with a message.

``POST /predict`` takes ``{"text": "..."}`` (one answer) or ``{"text": [...]}`` / ``{"texts": [...]}``
(a list of answers); the TF Serving route takes ``{"instances": ["...", ...]}``. Texts longer than the
run's ``max_length`` tokens are truncated by the tokenizer, as in training; the character cap only
stops a client from making the server tokenize megabytes.
"""

from __future__ import annotations

import numpy as np
from starlette.requests import Request

from shoulders.serving.errors import RequestError
from shoulders.serving.inputs import Limits, parse_json, read_body

TAKES = 'this run classifies texts: send JSON {"text": "..."} or {"texts": ["...", ...]}'
FILE_TYPES = ("multipart/", "image/", "application/octet-stream")


async def request_texts(request: Request, limits: Limits) -> tuple[np.ndarray, bool]:
    """The texts of a ``/predict`` body as an object array, and whether one text (not a list) was sent."""
    payload = _json(await read_body(request, limits), request.headers.get("content-type", ""))
    if not isinstance(payload, dict) or not ({"text", "texts"} & payload.keys()):
        raise RequestError(400, f"expected a JSON object with a \"text\" or \"texts\" key; {TAKES}.")
    if {"text", "texts"} <= payload.keys():
        raise RequestError(400, 'send either "text" or "texts", not both.')
    key = "text" if "text" in payload else "texts"
    value = payload[key]
    if isinstance(value, str) and key == "text":
        return check_texts([value], limits), True
    if not isinstance(value, list):
        expected = "a string or a list of strings" if key == "text" else "a list of strings"
        raise RequestError(422, f'"{key}" must be {expected}. Received: {type(value).__name__}')
    return check_texts(value, limits), False


def instance_texts(payload: object, limits: Limits) -> np.ndarray:
    """TF Serving's row format for a text run: {"instances": ["...", ...]} (each may also be {"text": "..."})."""
    instances = payload.get("instances", payload.get("inputs")) if isinstance(payload, dict) else None
    if not isinstance(instances, list):
        raise RequestError(400, 'expected a JSON object {"instances": ["text", ...]}; this run classifies texts.')
    unwrapped = [value["text"] if isinstance(value, dict) and set(value) == {"text"} else value for value in instances]
    return check_texts(unwrapped, limits)


def check_texts(texts: list, limits: Limits) -> np.ndarray:
    """Non-empty strings, at most ``max_texts`` of them, each at most ``max_text_chars`` long."""
    if not texts:
        raise RequestError(422, "the list of texts is empty: send at least one text.")
    if len(texts) > limits.max_texts:
        raise RequestError(413, f"{len(texts)} texts is over the limit of {limits.max_texts} per request; split the request.")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(422, f"text {index}: expected a string. Received: {type(text).__name__}")
        if not text.strip():
            raise RequestError(422, f"text {index}: empty (or only whitespace); send some words to classify.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:  # JSON's \ud800 escapes decode to lone surrogates: not text
            raise RequestError(
                422, f"text {index}: not valid Unicode (a lone surrogate {text[error.start]!r} at character {error.start}); send UTF-8 text."
            ) from None
        if len(text) > limits.max_text_chars:
            raise RequestError(
                413, f"text {index}: {len(text):,} characters is over the limit of {limits.max_text_chars:,}; shorten it."
            )
    return np.array(texts, dtype=object)


def _json(body: bytes, content_type: str) -> object:
    if content_type.startswith(FILE_TYPES):
        raise RequestError(415, f"received a file ({content_type.split(';')[0]}); {TAKES}.")
    return parse_json(body, TAKES)
