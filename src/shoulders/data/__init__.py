"""Data in: scan, validate, deduplicate, decode once into a cache, split honestly."""

from shoulders.data.dataset import BadFile, DataError, Duplicate, PreparedData, load_labelled_folder, prepare
from shoulders.data.digits import load_digits
from shoulders.data.images import ImageDecodeError, decode_many, fit_to_size, load_image, to_rgb

__all__ = [
    "BadFile",
    "DataError",
    "Duplicate",
    "ImageDecodeError",
    "PreparedData",
    "decode_many",
    "fit_to_size",
    "load_digits",
    "load_image",
    "load_labelled_folder",
    "prepare",
    "to_rgb",
]
