"""A run's models load in plain Keras: where only ``keras`` and one backend are installed (no shoulders,
no custom objects), ``keras.saving.load_model(path, safe_mode=True)`` loads the run's ``model.keras``
and its ``.keras`` export, on TensorFlow and on JAX, and they answer as ``Run.predict``."""

import json
from pathlib import Path

import numpy as np
import pytest
from plain_env import plain_environment, run_plain

from shoulders.export import export_run, read_manifest

# argv: a JSON list of model paths, the pixels (.npy), an output prefix. compile=True (the default) on
# purpose: the saved optimizer must be Keras' own too.
LOAD_IN_PLAIN_KERAS = """
import importlib.util, json, sys
import keras, numpy as np
assert importlib.util.find_spec("shoulders") is None and importlib.util.find_spec("keras_hub") is None
pixels = np.load(sys.argv[2])
for index, path in enumerate(json.loads(sys.argv[1])):
    model = keras.saving.load_model(path, safe_mode=True)
    np.save(f"{sys.argv[3]}{index}.npy", keras.ops.convert_to_numpy(keras.ops.softmax(model.predict_on_batch(pixels))))
print(keras.backend.backend())
"""


def _twenty_images(run) -> list[Path]:
    """The run's test images, then validation and training ones up to 20 (the tiny run tests on 6)."""
    splits = json.loads((run.path / "splits.json").read_text())
    return [Path(run.config.data) / name for name in [*splits["test"], *splits["val"], *splits["train"]][:20]]


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_model_and_keras_export_load_where_only_keras_and_a_backend_are_installed(trained_run, tmp_path, backend):
    if "keras" not in read_manifest(trained_run.path)["exports"]:
        export_run(trained_run, "keras")
    entry = read_manifest(trained_run.path)["exports"]["keras"]
    assert (entry["custom_layers"], entry["requires"]) == ([], [])
    images = _twenty_images(trained_run)
    assert len(images) == 20
    np.save(tmp_path / "pixels.npy", trained_run.load_images(images))
    models = [str(trained_run.path / "model.keras"), str(trained_run.path / entry["path"])]
    done = run_plain(plain_environment(tmp_path, backend), backend, LOAD_IN_PLAIN_KERAS,
                     json.dumps(models), str(tmp_path / "pixels.npy"), str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == backend
    expected = trained_run.predict(images)
    for index in range(len(models)):
        np.testing.assert_allclose(np.load(tmp_path / f"out{index}.npy"), expected, atol=1e-4)
