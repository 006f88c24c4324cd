"""`shoulders compare --task text`: the three strategies on one tiny table, same splits, the text options
passed through to every run; and the sizes of a text curve keep the test set."""

import json
from pathlib import Path

import pytest
import typer
from reviews import make_review_table
from typer.testing import CliRunner

from shoulders.cli import compare_commands
from shoulders.config import RunConfig
from shoulders.api.compare import CompareError, compare


@pytest.mark.slow  # three MiniLM runs (~45 s on an idle 2-core CPU): scratch and phase 2 trace the whole encoder
def test_compare_cli_trains_every_strategy_on_texts(tmp_path, cache_dir, monkeypatch):
    pytest.importorskip("keras_hub")
    monkeypatch.setenv("SHOULDERS_TRACKING", "off")  # lineage has its own tests; here it would copy 3 models
    table = make_review_table(tmp_path / "reviews.tsv", per_class=12)
    cli = typer.Typer()
    cli.callback()(lambda: None)
    compare_commands.register(cli)
    out = tmp_path / "compare"
    args = ["compare", str(table), "--task", "text", "--text-column", "text", "--label-column", "label",
            "--max-train", "12", "--max-length", "16", "--out", str(out), "--quiet", "--batch-size", "8",
            "--epochs-head", "1", "--epochs-finetune", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for strategy in ("feature-extraction", "two-phase", "scratch"):
        assert strategy in result.output
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["status"] == "finished" and comparison["task"] == "text" and comparison["backbone"] == "minilm_l6"
    assert [row["strategy"] for row in comparison["table"]] == ["feature-extraction", "two-phase", "scratch"]
    assert all(run["test_count"] == 4 for run in comparison["runs"])  # 2 per class: 15% of 12
    folders = [Path(run["path"]) for run in comparison["runs"]]
    splits = [json.loads((folder / "splits.json").read_text()) for folder in folders]
    assert splits[0] == splits[1] == splits[2] and len(splits[0]["train"]) + len(splits[0]["val"]) == 12
    for folder in folders:
        config = json.loads((folder / "config.json").read_text())
        assert config["task"] == "text" and config["max_train"] == 12 and config["max_length_used"] == 16
        assert (config["text_column"], config["label_column"], config["augmentation"]) == ("text", "label", None)
        assert "misclassified test texts" in (folder / "report.html").read_text() or "No test text" in (folder / "report.html").read_text()
    assert "Strategies" in (out / "report.html").read_text()


def test_text_sizes_keep_the_test_set(tmp_path):
    """A text curve's size n is max_train = n x classes: the test rows must be those of the full run."""
    from shoulders.text.inputs import load_data

    table = make_review_table(tmp_path / "reviews.tsv", per_class=20)
    full = load_data(RunConfig(data=str(table), task="text")).split_files()
    small = load_data(RunConfig(data=str(table), task="text", max_train=2 * 5)).split_files()
    assert small["test"] == full["test"]
    assert len(small["train"]) + len(small["val"]) == 10


def test_text_sizes_and_max_train_are_exclusive(tmp_path):
    table = make_review_table(tmp_path / "reviews.tsv", per_class=12)
    with pytest.raises(CompareError, match="--sizes and --max-train"):
        compare(table, task="text", sizes="5", max_train=12, out=tmp_path / "c")
    assert not (tmp_path / "c").exists()  # refused before any folder is made
