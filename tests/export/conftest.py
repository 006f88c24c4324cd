import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_runs import exported_run, exported_text_run, tiny_run  # noqa: E402


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    return tiny_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def exported_text(tiny_text_run):
    return exported_text_run(tiny_text_run)
