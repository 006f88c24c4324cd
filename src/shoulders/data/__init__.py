"""Data in: scan, validate, deduplicate, decode once into a cache, split honestly."""

from shoulders.data.dataset import PreparedData, load_labelled_folder, prepare
from shoulders.data.digits import load_digits
from shoulders.data.images import ImageDecodeError, decode_many, fit_to_size, load_image, to_rgb
from shoulders.data.splits import BadFile, DataError, DataOptionError, Duplicate, SplitSettings

__all__ = [
    "BadFile",
    "DataError",
    "DataOptionError",
    "Duplicate",
    "ImageDecodeError",
    "PreparedData",
    "SplitSettings",
    "decode_many",
    "fit_to_size",
    "load_digits",
    "load_image",
    "load_labelled_folder",
    "prepare",
    "to_rgb",
]
