"""Where a run computes: its backend, devices, processes and precision, set up once per run.

One process on one device in float32 (a CPU, today's default) is the plain case: every method here is
then the identity. Several devices on one machine, or several processes (machines), go through
`keras.distribution` on JAX: ``DataParallel`` over a ``DeviceMesh`` of every device of the job, the
global batch split over them. ``mixed_bfloat16`` computes in bfloat16 with float32 weights.

Whatever trained it, the model that is evaluated, saved and exported is ``portable()``: float32 layers
on one device, as plain Keras loads it anywhere.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import keras
import numpy as np

from shoulders.data.cache import cache_root
from shoulders.errors import ShouldersError

# How long a process of a job may go silent before the others give up on it (JAX's own default is 100 s,
# and Keras' `keras.distribution.initialize` passes none): a dead peer must not leave the rest hanging.
HEARTBEAT_SECONDS = int(os.environ.get("SHOULDERS_HEARTBEAT_SECONDS", "30"))
JOIN_TIMEOUT_SECONDS = int(os.environ.get("SHOULDERS_JOIN_TIMEOUT_SECONDS", "300"))
# Steps fused into one compiled call on an accelerator (host dispatch costs more than a small step there).
ACCELERATOR_STEPS_PER_EXECUTION = 16


class ComputeError(ShouldersError, ValueError):
    """The hardware options cannot be met here; the message names the option and what to do."""


@dataclass(frozen=True)
class Cluster:
    """A job of several processes (``--coordinator``, ``--num-processes``, ``--process-id``)."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Cluster:
        """JAX's standard variables: JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID."""
        environ = os.environ if environ is None else environ
        count, index = environ.get("JAX_NUM_PROCESSES"), environ.get("JAX_PROCESS_ID")
        return cls(environ.get("JAX_COORDINATOR_ADDRESS"), int(count) if count else None, int(index) if index else None)

    def or_env(self) -> Cluster:
        return self if self.num_processes is not None else Cluster.from_env()

    @property
    def multi(self) -> bool:
        return (self.num_processes or 1) > 1

    def check(self) -> None:
        if self.num_processes is not None and (isinstance(self.num_processes, bool) or self.num_processes < 1):
            raise ComputeError(f"--num-processes counts the processes of the job: give 1 or more. Received: {self.num_processes}")
        if not self.multi:
            return
        if not self.coordinator or ":" not in self.coordinator:
            raise ComputeError("--num-processes > 1 needs --coordinator HOST:PORT (process 0's address, the same for every process)")
        if self.process_id is None or not 0 <= self.process_id < self.num_processes:
            raise ComputeError(f"--process-id must be 0 to {self.num_processes - 1}, a different one in each process")


@dataclass(frozen=True)
class Compute:
    """The resolved hardware of a run (recorded in config.json) and what it takes to use it."""

    backend: str = "tensorflow"
    platform: str = "cpu"
    devices: int = 1  # per process
    processes: int = 1
    process_id: int = 0
    precision: str = "float32"
    mesh_devices: tuple[str, ...] = ()  # Keras device names of the whole job (distributed runs only)

    @property
    def total_devices(self) -> int:
        return self.devices * self.processes

    @property
    def distributed(self) -> bool:
        return self.total_devices > 1

    @property
    def writer(self) -> bool:
        """Only process 0 writes the run folder, the report and the lineage row."""
        return self.process_id == 0

    @property
    def plain(self) -> bool:
        return not self.distributed and self.precision == "float32"

    def facts(self) -> dict:
        """config.json's record of where the run computed."""
        return {"backend": self.backend, "devices": self.devices, "processes": self.processes, "precision": self.precision}

    def describe(self) -> str:
        unit = "device" if self.devices == 1 else "devices"
        job = f" x {self.processes} processes" if self.processes > 1 else ""
        return f"Training on {self.backend} · {self.devices} {self.platform} {unit}{job} · {self.precision}"

    def steps_per_execution(self, steps: int) -> int:
        return 1 if self.platform == "cpu" else max(1, min(ACCELERATOR_STEPS_PER_EXECUTION, steps))

    def distribution(self) -> keras.distribution.Distribution | None:
        if not self.distributed:
            return None
        mesh = keras.distribution.DeviceMesh((self.total_devices,), ["batch"], list(self.mesh_devices))
        # each process feeds its own shard of every batch (`ArrayBatches`), so Keras must not shard again
        return keras.distribution.DataParallel(device_mesh=mesh, auto_shard_dataset=False)

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Build and train inside: the run's precision policy and distribution, restored on exit."""
        if self.plain:
            yield
            return
        with _keras_settings(self.precision, self.distribution()):
            yield

    @staticmethod
    @contextmanager
    def local() -> Iterator[None]:
        """float32 on one device inside a distributed run's scope (a head on cached features)."""
        with _keras_settings("float32", None):
            yield

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.total_devices:
            raise ComputeError(
                f"--batch-size {batch_size} does not split over {self.total_devices} devices: the batch is global, "
                f"split evenly; give a multiple of {self.total_devices}, e.g. {self.total_devices * max(1, round(batch_size / self.total_devices))}"
            )

    def shard(self, rows: np.ndarray) -> np.ndarray:
        """This process's contiguous share of a global batch's rows."""
        if self.processes == 1:
            return rows
        size = len(rows) // self.processes
        return rows[self.process_id * size : (self.process_id + 1) * size]

    def portable(self, model: keras.Model) -> keras.Model:
        """The trained model as float32 Keras layers on one device (the model itself when it already is)."""
        if self.plain:
            return model
        weights = model.get_weights()  # replicated over the mesh: every process holds the whole values
        config = _float32(keras.saving.serialize_keras_object(model))
        with self.local():
            copy = keras.saving.deserialize_keras_object(config)
            copy.set_weights(weights)
        return copy

    def broadcast(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Process 0's values of ``arrays`` on every process (a head trained apart on each must agree)."""
        if self.processes == 1:
            return arrays
        from jax.experimental import multihost_utils

        return [np.asarray(value) for value in multihost_utils.broadcast_one_to_all(arrays)]

    def check_same_weights(self, model: keras.Model) -> str:
        """Every process ends with the same weights, or all of them fail. Returns the weights' sha256."""
        digest = weights_digest(model)
        if self.processes == 1:
            return digest
        from jax.experimental import multihost_utils

        mine = np.frombuffer(bytes.fromhex(digest), dtype=np.uint32)
        every = np.asarray(multihost_utils.process_allgather(mine)).reshape(self.processes, -1)
        differing = [index for index in range(self.processes) if not np.array_equal(every[index], every[0])]
        if differing:
            raise ComputeError(
                f"processes {differing} ended with weights that differ from process 0's: the job's results "
                "cannot be trusted (were the processes started with the same data and options?)"
            )
        return digest


def weights_digest(model: keras.Model) -> str:
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


@contextmanager
def _keras_settings(policy: str, distribution: keras.distribution.Distribution | None) -> Iterator[None]:
    """Keras' global dtype policy and distribution for the block, both restored after."""
    previous = keras.config.dtype_policy(), keras.distribution.distribution()
    keras.config.set_dtype_policy(policy)
    keras.distribution.set_distribution(distribution)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous[0])
        keras.distribution.set_distribution(previous[1])


def _float32(config):
    """A serialized model's config with every layer's dtype policy made float32 (weights stay as saved)."""
    if isinstance(config, list):
        return [_float32(value) for value in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "DTypePolicy" and isinstance(config.get("config"), dict):
        return {**config, "config": {**config["config"], "name": "float32"}}
    return {key: _float32(value) for key, value in config.items()}


def start(precision: str, devices: int | str | None, cluster: Cluster, task: str = "image", cache_dir: str | None = None) -> Compute:
    """Join the job (if several processes), pick the devices and the precision: once, before any model.
    On JAX, compiled steps persist under the cache (``<cache>/jax``; JAX_COMPILATION_CACHE_DIR wins): a
    second run of the same shapes starts in a third of the time (75 s -> 29 s for a tiny run on 2 cores)."""
    backend = keras.backend.backend()
    cluster = cluster.or_env()
    cluster.check()
    if backend != "jax":
        if cluster.multi or devices not in (None, "all", 1):
            option = "--num-processes" if cluster.multi else f"--devices {devices}"
            raise ComputeError(
                f"{option} trains through keras.distribution, which needs the JAX backend: run with KERAS_BACKEND=jax "
                "(pip install 'shoulders[jax]', or 'shoulders[gpu]' for NVIDIA GPUs)"
            )
        return Compute(backend, "cpu", 1, 1, 0, _resolve_precision(precision, "cpu", task))
    import jax

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", str(cache_root(cache_dir) / "jax"))
    if cluster.multi and not jax.distributed.is_initialized():  # once per process (compare trains several runs)
        jax.distributed.initialize(
            cluster.coordinator, cluster.num_processes, cluster.process_id,
            initialization_timeout=JOIN_TIMEOUT_SECONDS, heartbeat_timeout_seconds=HEARTBEAT_SECONDS,
        )
    local = jax.local_devices()
    platform = local[0].platform
    count = _device_count(1 if devices is None and task != "image" else devices, len(local), platform)
    processes = jax.process_count()
    if task != "image" and count * processes > 1:
        raise ComputeError("the text task trains on one device for now: pass --devices 1 (and one process)")
    mesh = [
        f"{device.platform}:{device.id}"
        for index in range(processes)
        for device in sorted((d for d in jax.devices() if d.process_index == index), key=lambda d: d.id)[:count]
    ]
    return Compute(
        "jax", platform, count, processes, jax.process_index(), _resolve_precision(precision, platform, task, local[0]),
        tuple(mesh) if count * processes > 1 else (),
    )


def _device_count(devices: int | str | None, available: int, platform: str) -> int:
    if devices is None:
        return 1 if platform == "cpu" else available
    if devices == "all":
        return available
    if devices > available:
        raise ComputeError(f"--devices {devices}: this process sees {available} {platform} device(s); pass --devices all or at most {available}")
    return int(devices)


def _resolve_precision(precision: str, platform: str, task: str, device=None) -> str:
    """``auto``: bfloat16 compute where the device has fast bfloat16 (TPUs, NVIDIA GPUs from Ampere on), else float32."""
    if precision == "mixed_bfloat16" and task != "image":
        raise ComputeError("--precision mixed_bfloat16 applies to the image task for now: pass --precision float32")
    if precision != "auto":
        return precision
    if task != "image" or platform == "cpu":
        return "float32"
    if platform == "tpu":
        return "mixed_bfloat16"
    capability = str(getattr(device, "compute_capability", "0"))
    return "mixed_bfloat16" if float(capability or 0) >= 8.0 else "float32"


def predict_batch(model: keras.Model, batch: np.ndarray) -> np.ndarray:
    """``model``'s inference outputs for ``batch`` as numpy, split over the active distribution's devices
    (rows padded to a multiple of them) and gathered back whole on every process."""
    distribution = keras.distribution.distribution()
    if distribution is None:
        return keras.ops.convert_to_numpy(model.predict_on_batch(batch))
    rows, multiple = len(batch), int(np.prod(distribution.device_mesh.shape))
    if rows % multiple:
        batch = np.concatenate([batch, np.zeros((multiple - rows % multiple, *batch.shape[1:]), batch.dtype)])
    placed = keras.distribution.distribute_tensor(batch, distribution.get_data_layout(batch.shape))
    if _process_count() == 1:
        return np.asarray(model.predict_on_batch(placed))[:rows]
    from jax.experimental import multihost_utils

    outputs = _stateless_predict(model)(
        [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables], placed
    )
    return np.asarray(multihost_utils.process_allgather(outputs, tiled=True))[:rows]


def _process_count() -> int:
    import jax

    return jax.process_count()


def _stateless_predict(model: keras.Model):
    """One compiled inference function per model, over variables that live on several processes' devices
    (Keras' ``predict_on_batch`` fetches its outputs whole, which only a single process can)."""
    function = getattr(model, "_shoulders_predict", None)
    if function is None:
        import jax

        function = jax.jit(lambda trainable, frozen, x: model.stateless_call(trainable, frozen, x, training=False)[0])
        model._shoulders_predict = function
    return function
