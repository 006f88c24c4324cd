"""Batch prediction over inputs of any number: streamed from the inputs to a file, on one process or a cluster."""

from shoulders.predicting.batch import BatchJob, BatchSummary, Cluster, predict_to_file
from shoulders.predicting.inputs import Inputs

__all__ = ["BatchJob", "BatchSummary", "Cluster", "Inputs", "predict_to_file"]
