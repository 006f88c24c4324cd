"""Serve a run over HTTP: micro-batched, limited, TF Serving-compatible; see `create_app`."""

from shoulders.serving.app import ServeSettings, create_app
from shoulders.serving.batching import MicroBatcher
from shoulders.serving.errors import ExportMissingError, QueueFullError, RequestError, ServeConfigError
from shoulders.serving.inputs import Limits
from shoulders.serving.predictors import SERVE_FORMATS, load_predictor

__all__ = [
    "SERVE_FORMATS", "ExportMissingError", "Limits", "MicroBatcher", "QueueFullError", "RequestError", "ServeConfigError",
    "ServeSettings", "create_app", "load_predictor",
]
