"""The image recipe on the JAX backend, as a user runs it: killed and resumed, evaluated, predicted, compared.

(Serving `--format keras` on JAX: tests/serving/test_jax_backend.py; several devices and processes:
tests/training/test_distributed.py.)
"""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from processes import jax_env, train_until_killed

import shoulders

ROOT = Path(__file__).resolve().parents[2]
SHOULDERS = [sys.executable, "-m", "shoulders.cli.main"]


def _shoulders(*args: str, timeout: int = 900) -> str:
    done = subprocess.run([*SHOULDERS, *args], env=jax_env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_an_augmented_run_killed_in_phase_2_resumes_then_evaluates_and_predicts_on_jax(colour_folder, tmp_path):
    out = tmp_path / "run"
    train = [*SHOULDERS, "train", str(colour_folder), "--out", str(out), "--image-size", "32", "--batch-size", "8",
             "--epochs-head", "2", "--epochs-finetune", "4", "--patience", "4", "--lr", "0.01", "--unfreeze", "1",
             "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    before = train_until_killed(train, out, jax_env(), phase2_epochs=1, timeout=600)
    assert not (out / "metrics.json").exists()
    resumed = subprocess.run([*train, "--resume"], env=jax_env(), capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Training on jax · 1 cpu device · float32" in resumed.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["backend"], config["devices"], config["processes"], config["precision"]) == ("jax", 1, 1, "float32")
    history = json.loads((out / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == list(range(len(history)))  # no epoch lost or run twice
    assert max(entry["epoch"] for entry in before) < len(history) - 1

    evaluated = json.loads(_shoulders("evaluate", str(out), "--json"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(metrics["test_accuracy"])
    image = next((colour_folder / "red").iterdir())
    predicted = _shoulders("predict", str(out), str(image), "--json")
    assert json.loads(predicted)[0]["top"][0]["label"] in {"red", "green", "blue"}


# argv: data folder, compare folder, cache folder. The strategies the killed run above does not train
# (feature-extraction is that run's phase 1 alone: the same code, already run on JAX above).
COMPARE_IN_BFLOAT16 = """
import sys
import shoulders
shoulders.compare(sys.argv[1], out=sys.argv[2], cache_dir=sys.argv[3], strategies=("full", "scratch"),
                  precision="mixed_bfloat16", image_size=32, batch_size=8, epochs_head=2, epochs_finetune=1, progress=False)
"""


@pytest.mark.slow
def test_the_other_strategies_compare_on_jax_in_bfloat16_and_save_float32_models(colour_folder, tmp_path):
    out = tmp_path / "compare"
    done = subprocess.run([sys.executable, "-c", COMPARE_IN_BFLOAT16, str(colour_folder), str(out), str(tmp_path / "cache")],
                          env=jax_env(), capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((out / "comparison.json").read_text())["table"]
    assert {row["strategy"] for row in table} == {"full", "scratch"}
    runs = [path.parent for path in out.glob("*/metrics.json")]
    assert len(runs) == 2
    for run in runs:
        config = json.loads((run / "config.json").read_text())
        assert (config["backend"], config["precision"]) == ("jax", "mixed_bfloat16")
        model = shoulders.load_run(run).model  # here: on TensorFlow
        assert {layer.dtype_policy.name for layer in model._flatten_layers()} == {"float32"}
        reference = np.load(run / "reference" / "test.npz")
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict_on_batch(reference["inputs"])))
        np.testing.assert_allclose(probabilities, reference["probabilities"], atol=1e-4)  # what was scored is what was saved
