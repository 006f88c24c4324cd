"""`shoulders compare` end to end on tiny photos, and the table arithmetic (mean and sd over seeds)."""

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shoulders.cli import compare_commands
from shoulders.api.compare import CompareError, _summarise, compare, parse_sizes



def test_parse_sizes():
    assert parse_sizes("50, 200,all") == [50, 200, "all"]
    assert parse_sizes(None) == []
    with pytest.raises(CompareError, match="e.g. 50,200,all"):
        parse_sizes("fifty")


def test_table_is_mean_and_sample_sd_over_seeds():
    runs = [
        dict(strategy="two-phase", seed=seed, size=size, test_accuracy=accuracy, train_seconds=2.0, trainable_params=5,
             total_params=9, train_images_per_class=per_class)
        for seed, size, accuracy, per_class in ((0, "all", 0.9, 20), (1, "all", 0.8, 20), (0, 5, 0.5, 5), (1, 5, 0.7, 5))
    ]
    result = {"strategies": ["two-phase"], "sizes": [5, "all"], "runs": runs}
    _summarise(result)
    [row] = result["table"]
    assert row["test_accuracy_mean"] == pytest.approx(0.85) and row["test_accuracy_sd"] == pytest.approx(0.0707, abs=1e-4)
    assert [(r["size"], r["test_accuracy_mean"]) for r in result["curve"]] == [(5, pytest.approx(0.6)), ("all", pytest.approx(0.85))]


def test_compare_rejects_options_it_sets_itself(colour_folder, tmp_path):
    with pytest.raises(CompareError, match="compare sets 'strategy'"):
        compare(colour_folder, out=tmp_path / "c", strategy="scratch")


def test_size_subsets_keep_the_full_test_set(colour_folder, cache_dir, tmp_path):
    from shoulders.config import Augmentation, RunConfig
    from shoulders.data import SplitSettings, prepare
    from shoulders.image.recipe import subset_folder

    config = RunConfig(data=str(colour_folder), backbone="efficientnet_lite0", seed=0, image_size=32, augmentation=Augmentation())
    subset = subset_folder(config, 3, tmp_path / "data" / "seed0-n3")
    full = prepare(colour_folder, 32, split=SplitSettings(seed=0)).split_files()
    for name in ("blue", "green", "red"):
        assert len(list((subset / "train" / name).iterdir())) == 3
    linked_test = sorted(p.name.replace("__", "/") for p in (subset / "test").rglob("*.png"))
    assert linked_test == sorted(full["test"])  # every size is scored on exactly the same test images
    assert not {p.name.replace("__", "/") for p in (subset / "train").rglob("*.png")} & set(full["test"])


def test_compare_cli_trains_every_strategy_on_the_same_split(colour_folder, cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    cli = typer.Typer()
    cli.callback()(lambda: None)
    compare_commands.register(cli)
    out = tmp_path / "compare"
    args = ["compare", str(colour_folder), "--out", str(out), "--quiet", "--image-size", "32", "--batch-size", "8",
            "--epochs-head", "2", "--epochs-finetune", "1", "--lr", "0.01", "--no-augment"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for strategy in ("feature-extraction", "two-phase", "scratch"):
        assert strategy in result.output
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["status"] == "finished"
    assert [row["strategy"] for row in comparison["table"]] == ["feature-extraction", "two-phase", "scratch"]
    splits = [json.loads(Path(run["path"], "splits.json").read_text()) for run in comparison["runs"]]
    assert splits[0] == splits[1] == splits[2]  # same seed -> same split for every strategy
    assert all(Path(run["path"], "report.html").exists() for run in comparison["runs"])
    assert "Strategies" in (out / "report.html").read_text()
