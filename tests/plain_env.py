"""Python environments that hold only Keras and one backend: no shoulders, no keras-hub.

Built from the test virtualenv's own installed distributions (the dependency closure of ``keras`` and
the backend, linked into a folder that ``python -S`` sees as its only site-packages), so they cost a
second, not a download, and hold exactly what ``pip install keras tensorflow-cpu`` (or ``jax``) would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

BACKEND_DISTRIBUTIONS = {"tensorflow": "tensorflow", "jax": "jax"}


def _closure(roots: list[str]) -> list[metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        name = re.sub(r"[-_.]+", "-", pending.pop()).lower()
        if name in found:
            continue
        try:
            found[name] = distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency this environment does not have
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(found.values())


def plain_environment(root: Path, backend: str) -> Path:
    """A folder of links to every top-level module of keras + ``backend`` and what they depend on."""
    site = root / f"plain-{backend}"
    site.mkdir(parents=True, exist_ok=True)
    for distribution in _closure(["keras", BACKEND_DISTRIBUTIONS[backend]]):
        base = Path(distribution.locate_file(""))
        for top in {Path(file).parts[0] for file in distribution.files or []}:
            source, target = base / top, site / top
            if top in ("..", "bin") or not source.exists() or target.exists():
                continue
            target.symlink_to(source)
    return site


def run_plain(site: Path, backend: str, script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -S`` (no site-packages but ``site``) running ``script`` on ``backend``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "KERAS"))}
    env.update(PYTHONPATH=str(site), PYTHONNOUSERSITE="1", KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-S", "-c", script, *args], env=env, capture_output=True, text=True, timeout=timeout)
