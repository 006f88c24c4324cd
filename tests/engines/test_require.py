"""The engine options without their extras, and train's engine rules: refused with the fix, before any work."""

import importlib.util

import pytest

from shoulders.config import ConfigError, RunConfig
from shoulders.engines import EngineError, require


@pytest.mark.parametrize("engine, extra", [("ray", "ray"), ("spark", "spark")])
def test_an_engine_without_its_extra_names_the_extra(monkeypatch, engine, extra):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("ray", "pyspark") else real(name, *a))
    with pytest.raises(EngineError, match=rf"--engine {engine} needs the {extra} extra: pip install 'shoulders\[{extra}\]'"):
        require(engine)


def test_train_engines():
    with pytest.raises(EngineError, match="--engine takes local, ray, spark"):
        require("dask")
    with pytest.raises(ConfigError, match="train's --engine takes local or ray"):
        RunConfig(data="photos", engine="spark")
    with pytest.raises(ConfigError, match="text runs train with --engine local"):
        RunConfig(data="t.csv", task="text", engine="ray")
    with pytest.raises(ConfigError, match="--no-augment"):
        RunConfig(data="photos", engine="ray")  # two-phase with augmentation: no fixed features
    with pytest.raises(ConfigError, match="--no-augment"):
        RunConfig(data="photos", engine="ray", strategy="feature-extraction")  # augmented views: no fixed features either
    assert RunConfig.from_options("photos", engine="ray", strategy="feature-extraction", augment=False).engine == "ray"
