"""--engine ray for real: a local Ray cluster (2 actors), the same rows as the local engine, and the
phase-1 features of `train --engine ray` giving the local run's result."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

import shoulders  # noqa: E402
from shoulders.predicting import BatchJob, Cluster, Inputs, predict_to_file  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def inbox(trained_run, tmp_path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for file in sorted(Path(trained_run.config.data).glob("*/*.png"))[::2]:
        (folder / f"{file.parent.name}-{file.name}").write_bytes(file.read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def _jsonl(path: Path) -> dict[str, dict]:
    return {row["path"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_ray_rows_equal_local_rows_and_two_actors_did_the_work(trained_run, inbox, tmp_path):
    local = predict_to_file(BatchJob(trained_run.path, Inputs((str(inbox),)), tmp_path / "local.jsonl"), progress=False)
    job = BatchJob(trained_run.path, Inputs((str(inbox),)), tmp_path / "ray.jsonl", engine="ray", batch_size=4,
                   cluster=Cluster(workers=2))
    remote = predict_to_file(job, progress=False)
    assert remote.written == local.written == 19 and remote.failed == local.failed == 1
    expected, got = _jsonl(tmp_path / "local.jsonl"), _jsonl(tmp_path / "ray.jsonl")
    assert list(got) == list(expected)  # same rows, in input order
    for path, row in expected.items():
        assert got[path]["label"] == row["label"] and got[path]["error"] == row["error"]
        assert np.allclose(got[path]["top_k_probabilities"], row["top_k_probabilities"], atol=1e-5)
    workers = {row["worker"] for row in got.values()}  # host:pid, written by each actor itself
    assert len(workers) == 2 and not workers & {row["worker"] for row in expected.values()}


def test_train_feature_extraction_on_ray_matches_the_local_run(colour_folder, tmp_path):
    options = dict(image_size=32, batch_size=8, epochs_head=30, strategy="feature-extraction", lr=1e-2,
                   augment=False, progress=False, seed=3)
    local = shoulders.train(colour_folder, out=tmp_path / "local", cache_dir=tmp_path / "cache-local", **options)
    remote = shoulders.train(colour_folder, out=tmp_path / "ray", cache_dir=tmp_path / "cache-ray", engine="ray", **options)
    assert json.loads((remote.path / "config.json").read_text())["engine"] == "ray"
    assert remote.metrics["test_accuracy"] == local.metrics["test_accuracy"]
    assert [epoch["loss"] for epoch in remote.history] == pytest.approx([epoch["loss"] for epoch in local.history], abs=1e-4)
    files = sorted(colour_folder.glob("*/*.png"))
    assert np.abs(remote.predict(files) - local.predict(files)).max() < 1e-4

