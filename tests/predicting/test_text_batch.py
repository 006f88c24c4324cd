"""`shoulders predict` on a text run: .txt files (a text per line) and CSV/TSV columns, to a file."""

import json

import pytest
from typer.testing import CliRunner

from shoulders.cli.main import app
from shoulders.predicting.inputs import PredictInputsError

runner = CliRunner()


def test_text_files_and_a_csv_column_to_jsonl(tiny_text_run, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("what a wonderful film\nboring and dull\n", encoding="utf-8")
    table = tmp_path / "more.csv"
    table.write_text('id,review\n1,"a gripping, funny film"\n2,\n', encoding="utf-8")
    out = tmp_path / "p.jsonl"
    result = runner.invoke(app, ["predict", str(tiny_text_run.path), str(lines), str(table), "--text-column", "review", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["text"] for row in rows] == ["what a wonderful film", "boring and dull", "a gripping, funny film", ""]
    assert [row["label"] for row in rows[:3]] == ["positive", "negative", "positive"]
    assert rows[3]["label"] is None and "empty text" in rows[3]["error"]
    expected = tiny_text_run.predict([row["text"] for row in rows[:3]])
    assert [row["probability"] for row in rows[:3]] == pytest.approx(list(expected.max(axis=1)), abs=1e-4)


def test_a_missing_column_names_the_option(tiny_text_run, tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("id\treview\n1\tfine\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", str(tiny_text_run.path), str(table), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "--text-column" in result.output and "review" in result.output
    assert not (tmp_path / "p.csv").exists()  # refused before anything was written
    assert issubclass(PredictInputsError, ValueError)
