"""Where lineage goes: the store --tracking-uri names (train and compare take it), and artifacts that
reference the run folder instead of copying it."""

import json

from shoulders.config import RunConfig
from shoulders.runs import layout
from shoulders.tracking import log_run


def _finished_folder(path, data):
    """A finished run folder's records, a 2 MB stand-in model and a reference/ folder."""
    path.mkdir(parents=True)
    test = {"count": 3, "per_class": {}, "confusion_matrix": []}
    records = {
        layout.CONFIG: RunConfig(data=str(data)).to_dict(),
        layout.METRICS: {"test_accuracy": 1.0, "test_macro_f1": 1.0, "val_accuracy": 1.0, "strategy": "two-phase", "backbone": "efficientnet_lite0", "test": test},
        layout.HISTORY: [], layout.DATA: {"classes": ["a", "b"]}, layout.BAD_FILES: [],
    }
    for name, value in records.items():
        (path / name).write_text(json.dumps(value))
    (path / layout.MODEL).write_bytes(b"\0" * 2_000_000)
    (path / layout.REFERENCE).mkdir()
    (path / layout.TEST_REFERENCE).write_bytes(b"\0" * 1_000_000)
    return path


def test_artifacts_are_the_small_records_not_a_copy_of_the_run_folder(tmp_path):
    from mlflow import MlflowClient

    run = _finished_folder(tmp_path / "runs" / "r1", tmp_path / "photos")
    uri = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    record = log_run(run, uri)
    client = MlflowClient(tracking_uri=uri)
    logged = {item.path for item in client.list_artifacts(record["run_id"])}
    assert logged == {layout.CONFIG, layout.METRICS, layout.HISTORY, layout.DATA, layout.BAD_FILES}
    stored = sum(f.stat().st_size for f in (tmp_path / "runs" / "mlartifacts").rglob("*") if f.is_file())
    assert stored < 100_000  # not the 3 MB of model and reference arrays
    assert client.get_run(record["run_id"]).data.tags["shoulders.run_folder"] == str(run.resolve())
