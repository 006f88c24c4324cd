"""`Compute` on the default backend: option checks, whole and sharded batches, the portable float32 copy."""

import sys

import keras
import numpy as np
import pytest

from shoulders import backend
from shoulders.config import ConfigError, RunConfig, devices_option
from shoulders.errors import ShouldersError
from shoulders.training import compute as compute_lib
from shoulders.training.batches import ArrayBatches
from shoulders.training.compute import Cluster, Compute, ComputeError


def test_more_than_one_device_or_process_needs_jax_and_says_so():
    with pytest.raises(ComputeError, match=r"--devices 2 .*KERAS_BACKEND=jax"):
        compute_lib.start("auto", 2, Cluster())
    with pytest.raises(ComputeError, match=r"--num-processes .*KERAS_BACKEND=jax"):
        compute_lib.start("auto", None, Cluster("127.0.0.1:1234", 2, 0))
    plain = compute_lib.start("auto", "all", Cluster())
    assert plain.facts() == {"backend": "tensorflow", "devices": 1, "processes": 1, "precision": "float32"}
    assert plain.plain and plain.writer and isinstance(ComputeError("x"), ShouldersError)


def test_cluster_options_are_checked_by_name(monkeypatch):
    with pytest.raises(ComputeError, match="--coordinator HOST:PORT"):
        Cluster(None, 2, 0).check()
    with pytest.raises(ComputeError, match="--process-id must be 0 to 1"):
        Cluster("127.0.0.1:1234", 2, 2).check()
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:9999")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "4")
    monkeypatch.setenv("JAX_PROCESS_ID", "3")
    assert Cluster().or_env() == Cluster("10.0.0.1:9999", 4, 3)
    assert Cluster("127.0.0.1:1", 2, 1).or_env() == Cluster("127.0.0.1:1", 2, 1)  # options win over the variables


def test_precision_and_devices_options_are_validated():
    with pytest.raises(ConfigError, match="--precision"):
        RunConfig(data="x", precision="float16")
    with pytest.raises(ConfigError, match="--devices"):
        devices_option("two")
    with pytest.raises(ConfigError, match="--devices"):
        RunConfig(data="x", devices=0)
    assert devices_option("all") == "all" and devices_option("3") == 3
    with pytest.raises(ComputeError, match="--precision float32"):
        compute_lib.start("mixed_bfloat16", None, Cluster(), task="text")


def test_the_global_batch_must_split_over_the_devices():
    with pytest.raises(ComputeError, match="--batch-size 30 .* multiple of 4"):
        Compute(devices=2, processes=2).check_batch(30)
    Compute(devices=2, processes=2).check_batch(32)


def test_distributed_batches_are_whole_and_each_process_reads_its_share():
    x, y = np.arange(10)[:, None], np.arange(10)
    plain = ArrayBatches(x, y, 4)
    assert [len(plain[i][1]) for i in range(len(plain))] == [4, 4, 2]  # one device: as always
    whole = ArrayBatches(x, y, 4, compute=Compute(devices=2))
    assert [len(whole[i][1]) for i in range(len(whole))] == [4, 4, 4]
    assert sorted(whole[2][1]) == [0, 1, 8, 9]  # topped up with the epoch's first rows
    shares = [ArrayBatches(x, y, 4, shuffle=True, seed=3, compute=Compute(processes=2, process_id=p)) for p in (0, 1)]
    joined = [sorted(np.concatenate([share[i][1] for share in shares])) for i in range(3)]
    assert set(np.concatenate(joined).tolist()) == set(range(10))
    assert all(len(share[i][1]) == 2 for share in shares for i in range(3))
    everything = ArrayBatches(x, y, 4, shuffle=True, seed=3, compute=Compute(devices=2))
    assert joined == [sorted(everything[i][1]) for i in range(3)]  # the shares make the one-process batch


def test_the_portable_copy_of_a_mixed_precision_model_is_float32_with_the_same_weights():
    mixed = Compute(precision="mixed_bfloat16")
    with mixed.scope():
        inputs = keras.Input((6,))
        outputs = keras.layers.Dense(3, name="logits", dtype="float32")(keras.layers.Dense(5, activation="relu")(inputs))
        model = keras.Model(inputs, outputs)
    assert model.layers[1].dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the scope restores the global policy
    copy = mixed.portable(model)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    for original, copied in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(original, copied)
    rows = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    np.testing.assert_allclose(copy.predict_on_batch(rows), model.predict_on_batch(rows), atol=0.05)
    assert Compute().portable(model) is model


def test_the_backend_follows_the_accelerator(monkeypatch):
    monkeypatch.setattr(backend, "accelerator_plugin", lambda: "jax-cuda12-plugin")
    monkeypatch.delenv("KERAS_BACKEND")
    assert backend.choose() is None  # Keras is already imported here: too late to choose
    monkeypatch.delitem(sys.modules, "keras")
    assert backend.choose() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert backend.choose() is None  # the user's own setting wins
    monkeypatch.undo()
    assert backend.accelerator_plugin() is None  # this machine (and CI): no JAX accelerator plugin


def test_an_installed_plugin_without_its_device_is_no_accelerator(monkeypatch):
    monkeypatch.setattr(backend.metadata, "version", lambda name: "0.7")
    monkeypatch.setattr(backend.glob, "glob", lambda pattern: [])
    assert backend.accelerator_plugin() is None
    monkeypatch.setattr(backend.glob, "glob", lambda pattern: ["/dev/nvidia0"] if "nvidia" in pattern else [])
    assert backend.accelerator_plugin() == "jax-cuda12-plugin"


def test_a_job_of_several_processes_does_not_resume(tmp_path):
    from shoulders.api.train import train

    with pytest.raises(ComputeError, match="--resume"):
        train(RunConfig(data=str(tmp_path), out=str(tmp_path / "run")), resume=True, cluster=Cluster("127.0.0.1:1234", 2, 0))
