"""`--format keras` on the JAX backend: a run trained on TensorFlow serves the same answers through the app."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from images import pixels
from shoulders.serving import load_predictor

HERE = Path(__file__).resolve().parent
COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}

# argv: the run folder, then the requests as JSON: [route, JSON body] or [route, {"png": colour}] (a raw image).
SERVE_ON_JAX = f"""
import json, sys, warnings
sys.path.insert(0, {str(HERE)!r})
with warnings.catch_warnings():  # Starlette's TestClient warns about httpx at import; it still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
import keras
from images import png
from shoulders.runs.reader import load_run
from shoulders.serving import create_app

answers = []
with TestClient(create_app(load_run(sys.argv[1]))) as client:
    for route, body in json.loads(sys.argv[2]):
        sent = client.post(route, content=png(tuple(body["png"]))) if "png" in body else client.post(route, json=body)
        answers.append([sent.status_code, sent.json()])
print(json.dumps({{"backend": keras.backend.backend(), "tensorflow_loaded": "tensorflow" in sys.modules, "answers": answers}}))
"""


def serve_on_jax(run_path: Path, requests: list) -> dict:
    """The app's answers to ``requests`` in a fresh process on the JAX backend, with whether TensorFlow got loaded."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "SHOULDERS_TRACKING": "off"}
    command = [sys.executable, "-c", SERVE_ON_JAX, str(run_path), json.dumps(requests)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=HERE.parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and all(status == 200 for status, _ in result["answers"]), result
    return result


@pytest.mark.slow
def test_an_image_run_serves_on_jax_without_tensorflow(exported):
    rows = [pixels(colour, (32, 32)).tolist() for colour in COLOURS.values()]
    result = serve_on_jax(exported.path, [["/predict", {"png": COLOURS["blue"]}], ["/v1/models/default:predict", {"instances": rows}]])
    assert not result["tensorflow_loaded"]
    (_, one), (_, served) = result["answers"]
    assert one["predictions"][0]["label"] == "blue" and one["batch_size"] == 1
    assert [row["labels"] for row in served["predictions"]] == list(COLOURS)
    decoded = exported.load_images([pixels(colour, (32, 32)) for colour in COLOURS.values()])  # as the route decodes them
    on_tensorflow = load_predictor(exported, "keras")(decoded)
    np.testing.assert_allclose([row["probabilities"] for row in served["predictions"]], on_tensorflow, atol=1e-4)


@pytest.mark.slow
def test_a_text_run_serves_on_jax_with_its_own_answers(exported_text):
    # keras-hub itself imports TensorFlow when it is installed, so only the answers are compared here.
    texts = [entry["text"] for entry in exported_text.metrics["test_predictions"]][:5]
    result = serve_on_jax(exported_text.path, [["/v1/models/default:predict", {"instances": texts}]])
    (_, served), = result["answers"]
    np.testing.assert_allclose([row["probabilities"] for row in served["predictions"]], exported_text.predict(texts), atol=1e-5)
