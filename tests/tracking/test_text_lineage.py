"""Lineage of a text run: the MLflow run says task=text, carries the encoder, token length and weights
sha256, and no image-only params."""

import json

import pytest

from shoulders.tracking import TRACKED_FILE, list_runs


def test_text_run_is_logged_with_text_lineage(tiny_text_run):
    from mlflow import MlflowClient

    record = json.loads((tiny_text_run.path / TRACKED_FILE).read_text())
    run = MlflowClient(tracking_uri=record["tracking_uri"]).get_run(record["run_id"])
    params, metrics = run.data.params, tiny_text_run.metrics
    assert params["task"] == "text" and run.data.tags["shoulders.task"] == "text"
    assert params["text_encoder"] == params["base_architecture"] == "minilm_l6"
    assert params["max_length"] == str(tiny_text_run.max_length)
    assert params["weights_sha256"] == metrics["weights_sha256"] and len(metrics["weights_sha256"]) == 64
    assert "minilm" in params["pretrained_weights"].lower() and "imagenet" not in params["pretrained_weights"]
    assert not {"image_size", "crop_fraction", "augmentation"} & set(params)
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    [row] = [row for row in list_runs(record["tracking_uri"]) if row["id"] == record["run_id"]]
    assert row["task"] == "text" and row["strategy"] == "two-phase"
