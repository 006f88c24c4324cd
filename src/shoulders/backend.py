"""Which Keras backend runs: chosen before Keras is imported, the accelerator's when there is one.

Keras reads ``KERAS_BACKEND`` once, at its import. A user's own setting always wins; without one,
shoulders picks JAX where JAX can drive an accelerator (its CUDA or TPU plugin is installed and the
device is present), and otherwise keeps Keras' default (TensorFlow, on the CPU). The check reads
package metadata and device files only: probing JAX itself would start its runtime, which must not
happen before a multi-process job has joined (`jax.distributed.initialize`).
"""

from __future__ import annotations

import glob
import os
import sys
from importlib import metadata

# JAX's accelerator plugins (pip install 'shoulders[gpu]' brings a CUDA one), and the device files
# that say the hardware is there.
ACCELERATOR_PLUGINS = {
    "jax-cuda12-plugin": ("/dev/nvidia[0-9]*", "/proc/driver/nvidia/gpus/*"),
    "jax-cuda13-plugin": ("/dev/nvidia[0-9]*", "/proc/driver/nvidia/gpus/*"),
    "libtpu": ("/dev/accel[0-9]*", "/dev/vfio/[0-9]*"),
}


def accelerator_plugin() -> str | None:
    """The installed JAX plugin whose device is present, if any."""
    for package, device_files in ACCELERATOR_PLUGINS.items():
        try:
            metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
        if any(glob.glob(pattern) for pattern in device_files):
            return package
    return None


def choose() -> str | None:
    """Set ``KERAS_BACKEND=jax`` when it is unset, Keras is not yet imported and JAX has an accelerator.
    Returns the backend it chose, or None when it left the choice alone."""
    if os.environ.get("KERAS_BACKEND") or "keras" in sys.modules:
        return None
    if accelerator_plugin() is None:
        return None
    os.environ["KERAS_BACKEND"] = "jax"
    return "jax"
