"""Killing a real `shoulders train` process mid-run, for the resume tests (a plain module: test files import it)."""

import json
import signal
import subprocess
import time
from pathlib import Path


def train_until_killed(command: list[str], out: Path, env: dict, phase2_epochs: int = 2, timeout: float = 300) -> list[dict]:
    """Start ``command``, SIGKILL it once ``phase2_epochs`` phase-2 epochs are logged in ``out``, and return
    the epochs it had logged."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    epochs_file = out / ".state" / "epochs.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = epochs_file.read_text().splitlines() if epochs_file.exists() else []
        if sum('"phase2"' in line for line in lines) >= phase2_epochs:
            break
        assert process.poll() is None, "training ended before it could be killed"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return [json.loads(line) for line in epochs_file.read_text().splitlines()]


def jax_env(devices: int = 1, **extra: str) -> dict:
    """The environment of a `shoulders` process on the JAX backend with ``devices`` virtual CPU devices."""
    import os

    env = {**os.environ, "KERAS_BACKEND": "jax", "SHOULDERS_TRACKING": "off", "SHOULDERS_REPORT": "off", **extra}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
