"""Several devices and several processes through `keras.distribution` on JAX (virtual CPU devices, 127.0.0.1).

Each test runs real `shoulders` processes on the JAX backend: the test process itself stays on TensorFlow.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from processes import free_port, jax_env

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = ["--image-size", "32", "--batch-size", "8", "--epochs-head", "6", "--epochs-finetune", "2", "--lr", "0.01", "--unfreeze", "1", "--quiet"]

# argv: data folder, run folder, cache folder. Trains on every device while recording the sharding of every
# batch Keras hands a compiled step (fit) and of every batch the frozen backbone featurises (phase 1).
RECORD_SHARDINGS = """
import json, sys
import keras
from keras.src.backend.jax import trainer as jax_trainer

seen = {"fit": [], "features": []}

def record(kind, array):
    sharding = array.sharding
    seen[kind].append({"rows": array.shape[0], "devices": sorted(str(d) for d in sharding.device_set),
                       "rows_per_device": sharding.shard_shape(array.shape)[0]})

distribute_data, distribute_tensor = jax_trainer._distribute_data, keras.distribution.distribute_tensor
def fit_batches(data, layouts=None):
    placed = distribute_data(data, layouts)
    record("fit", placed[0])
    return placed
def feature_batches(tensor, layout):
    placed = distribute_tensor(tensor, layout)
    record("features", placed)
    return placed
jax_trainer._distribute_data, keras.distribution.distribute_tensor = fit_batches, feature_batches

import shoulders
run = shoulders.train(sys.argv[1], out=sys.argv[2], cache_dir=sys.argv[3], image_size=32, batch_size=8, epochs_head=6,
                      epochs_finetune=2, lr=0.01, unfreeze=1, augment=False, devices="all", progress=False)
print(json.dumps(seen))
"""


def _config(run: Path) -> dict:
    config = json.loads((run / "config.json").read_text())
    return {key: config[key] for key in ("backend", "devices", "processes", "precision")}


def _start_job(folder: Path, out: Path, tmp_path: Path, extra: list[str] = (), **env: str) -> list[subprocess.Popen]:
    """Two `shoulders train` processes of one job on 127.0.0.1, one CPU device each."""
    port = free_port()
    processes = []
    for index in (0, 1):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "shoulders.cli.main", "train", str(folder), "--out", str(out), *OPTIONS,
                   "--cache-dir", str(tmp_path / "cache"), "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                   "--process-id", str(index), *extra]
        log = open(tmp_path / f"process{index}.log", "w")
        processes.append(subprocess.Popen(command, env=jax_env(1, TMPDIR=str(scratch), **env), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
    return processes


@pytest.mark.slow
def test_two_devices_split_every_batch_and_two_processes_train_the_same_model(colour_folder, tmp_path):
    one_process = tmp_path / "two-devices"
    done = subprocess.run([sys.executable, "-c", RECORD_SHARDINGS, str(colour_folder), str(one_process), str(tmp_path / "cache")],
                          env=jax_env(2), capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert _config(one_process) == {"backend": "jax", "devices": 2, "processes": 1, "precision": "float32"}
    assert seen["fit"] and seen["features"]  # phase 2's steps, and phase 1's one pass over the frozen backbone
    for entry in seen["fit"] + seen["features"]:
        assert entry["devices"] == ["cpu:0", "cpu:1"] and entry["rows_per_device"] * 2 == entry["rows"], entry
    assert all(entry["rows"] == 8 for entry in seen["fit"])  # the global batch, whole in every step

    job = tmp_path / "two-processes"
    processes = _start_job(colour_folder, job, tmp_path, ["--no-augment"])
    codes = [process.wait(timeout=900) for process in processes]
    logs = [(tmp_path / f"process{index}.log").read_text() for index in (0, 1)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "same weights" in logs[1]
    assert _config(job) == {"backend": "jax", "devices": 1, "processes": 2, "precision": "float32"}
    assert {"model.keras", "metrics.json", "history.json", "splits.json", "reference"} <= {path.name for path in job.iterdir()}
    assert not any((tmp_path / "tmp1").iterdir())  # process 1 wrote nothing that stays
    # the same global batches, split the same way over two devices: the same model, to float rounding
    single, joint = (np.load(run / "reference" / "test.npz") for run in (one_process, job))
    np.testing.assert_allclose(joint["probabilities"], single["probabilities"], atol=1e-4)
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (one_process, job)]
    assert metrics[0]["test_accuracy"] == metrics[1]["test_accuracy"] >= 0.8


@pytest.mark.slow
def test_a_killed_process_makes_the_other_exit_with_a_message_within_a_minute(colour_folder, tmp_path):
    """Killed as soon as both have joined the job (the heartbeat shortened to 10 s to keep the test short)."""
    job = tmp_path / "job"
    processes = _start_job(colour_folder, job, tmp_path, ["--epochs-head", "1000", "--patience", "1000"],
                           SHOULDERS_HEARTBEAT_SECONDS="10")
    logs = [tmp_path / f"process{index}.log" for index in (0, 1)]
    deadline = time.time() + 600
    while not all("Training on jax" in log.read_text() for log in logs):
        assert time.time() < deadline and all(process.poll() is None for process in processes), "the job never started"
        time.sleep(0.2)
    processes[1].send_signal(signal.SIGKILL)
    killed = time.time()
    code = processes[0].wait(timeout=120)
    waited = time.time() - killed
    log = logs[0].read_text()
    assert code != 0 and waited < 60, (code, waited, log[-2000:])
    assert "another task died" in log or "heartbeat" in log.lower(), log[-2000:]
