"""Where lineage goes: the store --tracking-uri names (train and compare take it), and artifacts that
reference the run folder instead of copying it."""

import json

from typer.testing import CliRunner

from shoulders.cli.main import app
from shoulders.config import RunConfig
from shoulders.runs import layout
from shoulders.tracking import list_runs, log_run


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


def test_train_takes_tracking_uri_and_logs_there(tmp_path, colour_folder, cache_dir):
    store = tmp_path / "elsewhere" / "x.db"
    args = [
        "train", str(colour_folder), "--out", str(tmp_path / "runs" / "r1"), "--tracking-uri", f"sqlite:///{store}",
        "--strategy", "feature-extraction", "--image-size", "32", "--batch-size", "8", "--epochs-head", "2",
        "--epochs-finetune", "0", "--no-augment", "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [row["name"] for row in list_runs(f"sqlite:///{store}")] == ["r1"]
    assert not (tmp_path / "runs" / "mlflow.db").exists()  # not the default store beside the run


def test_compare_takes_tracking_uri_and_hands_it_to_every_run(tmp_path, colour_folder, monkeypatch):
    from shoulders.api import compare
    from shoulders.errors import ShouldersError

    handed = []

    def train(config, **kwargs):  # stands in for training: records where lineage would go, then stops
        handed.append(kwargs["tracking_uri"])
        raise ShouldersError("stop after the first run")

    monkeypatch.setattr(compare, "train", train)
    uri = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(app, ["compare", str(colour_folder), "--out", str(tmp_path / "cmp"), "--tracking-uri", uri, "--quiet"])
    assert result.exit_code == 2 and "stop after the first run" in result.output
    assert handed == [uri]
