import pytest
from tiny_runs import tiny_run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    return tiny_run(tmp_path_factory.getbasetemp())
