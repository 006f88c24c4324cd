"""Engines past one process: Ray Data and Spark, optional extras. Each takes a factory that builds the
work function on the worker (a model loads once per worker, never in the driver's pickle) and streams
results back to the driver as they finish.
"""

from __future__ import annotations

import importlib.util

from shoulders.errors import ShouldersError

ENGINES = ("local", "ray", "spark")
_EXTRAS = {"ray": ("ray", "ray"), "spark": ("pyspark", "spark")}


class EngineError(ShouldersError, ValueError):
    """An unknown --engine, or one whose extra is not installed."""


def require(engine: str) -> None:
    """Refuse an unknown engine, or one whose package is missing, naming the extra that installs it."""
    if engine not in ENGINES:
        raise EngineError(f"--engine takes {', '.join(ENGINES)}. Received: {engine!r}")
    if engine in _EXTRAS:
        module, extra = _EXTRAS[engine]
        if importlib.util.find_spec(module) is None:
            raise EngineError(f"--engine {engine} needs the {extra} extra: pip install 'shoulders[{extra}]'")
