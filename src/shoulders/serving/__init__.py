"""Serve a run over HTTP: micro-batched, limited, TF Serving-compatible; see `create_app`."""

from shoulders.serving.app import ServeSettings, create_app
from shoulders.serving.batching import MicroBatcher, QueueFullError
from shoulders.serving.inputs import Limits, RequestError
from shoulders.serving.predictors import SERVE_FORMATS, ExportMissingError, load_predictor

__all__ = ["SERVE_FORMATS", "ExportMissingError", "Limits", "MicroBatcher", "QueueFullError", "RequestError", "ServeSettings", "create_app", "load_predictor"]
