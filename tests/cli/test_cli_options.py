"""Every command refuses a numeric option that cannot work, by its name, with exit 2 and nothing made."""

import pytest
from typer.testing import CliRunner

from shoulders.cli.main import app

TRAIN_CASES = [
    (["--lr", "nan"], "--lr takes a finite number"),
    (["--lr", "inf"], "--lr takes a finite number"),
    (["--epochs-head", "-1"], "--epochs-head must be 0 or more"),
    (["--epochs-finetune", "-2"], "--epochs-finetune must be 0 or more"),
    (["--lr-finetune", "nan"], "--lr-finetune takes a finite number"),
    (["--crop-fraction", "nan"], "--crop-fraction takes a finite number"),
    (["--layer-decay", "-0.5"], "--layer-decay must be in (0, 1]"),
    (["--seed", "-1"], "--seed must be in [0, "),
    (["--batch-size", "0"], "--batch-size must be 1 or more"),
    (["--num-processes", "0"], "--num-processes counts the processes"),
]


def _run(args: list[str]):
    result = CliRunner().invoke(app, args)
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


@pytest.mark.parametrize(("args", "message"), TRAIN_CASES)
def test_train_names_the_bad_option_and_makes_nothing(tmp_path, colour_folder, args, message):
    out = tmp_path / "run"
    code, output = _run(["train", str(colour_folder), "--out", str(out), "--quiet", *args])
    assert code == 2 and message in output, output
    assert not out.exists()


def test_compare_names_the_bad_option_and_makes_nothing(tmp_path, colour_folder):
    out = tmp_path / "cmp"
    for args, message in ((["--lr", "nan"], "--lr takes a finite number"), (["--epochs-head", "-1"], "--epochs-head must be 0 or more")):
        code, output = _run(["compare", str(colour_folder), "--out", str(out), "--quiet", *args])
        assert code == 2 and message in output, output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "inf"], "--timeout takes a finite number"),
        (["--max-wait-ms", "inf"], "--max-wait-ms takes a finite number"),
        (["--max-body-mb", "inf"], "--max-body-mb takes a finite number"),
        (["--timeout", "nan"], "'--timeout'"),  # typer's own min= check refuses NaN, by name
    ],
)
def test_serve_names_the_bad_option(tmp_path, args, message):
    code, output = _run(["serve", str(tmp_path / "no-run"), *args])
    assert code == 2 and message in output, output
