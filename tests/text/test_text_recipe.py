"""The recipe on texts, end to end: real MiniLM, real phases, run folder, reload, CLI, JAX backend."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("keras_hub")

from processes import train_until_killed  # noqa: E402
from reviews import SHARED, make_review_table  # noqa: E402

import shoulders  # noqa: E402
from shoulders.cli.main import app  # noqa: E402
from shoulders.config import ConfigError, RunConfig  # noqa: E402

SST2 = SHARED / "datasets" / "sst2"


def test_two_phase_text_run_is_complete_and_honest(tiny_text_run):
    run, metrics = tiny_text_run, tiny_text_run.metrics
    assert run.task == "text" and run.classes == ["negative", "positive"]
    assert metrics["test_accuracy"] >= 0.9  # easy reviews; chance is 0.5
    assert metrics["trainable_params_phase1"] == 384 * 2 + 2  # the head only
    layer = 4 * (384 * 384 + 384) + 2 * 384 * 2 + 384 * 1536 + 1536 + 1536 * 384 + 384  # one transformer layer
    assert metrics["trainable_params_phase2"] == 2 * layer + 384 * 2 + 2  # the top 2 of 6 layers + head
    assert metrics["lr_phase2"] == pytest.approx(2e-5) and metrics["phase2_start_epoch"] == metrics["epochs_phase1"]
    assert metrics["unfrozen_blocks"] == ["transformer_layer_4", "transformer_layer_5"]
    for name in ("config.json", "model.keras", "tokenizer.json", "history.json", "metrics.json", "splits.json", "bad_files.json"):
        assert (run.path / name).exists(), name
    splits = json.loads((run.path / "splits.json").read_text())
    assert not set(splits["test"]) & (set(splits["train"]) | set(splits["val"]))


def test_reloaded_run_predicts_what_was_scored(tiny_text_run):
    run = shoulders.load_run(tiny_text_run.path)
    predictions = run.metrics["test_predictions"]
    probabilities = run.predict([p["text"] for p in predictions])
    assert [run.classes[i] for i in probabilities.argmax(1)] == [p["predicted"] for p in predictions]
    np.testing.assert_allclose(probabilities.max(1), [p["confidence"] for p in predictions], atol=1e-4)
    with pytest.raises(TypeError, match="list"):
        run.predict("a bare string")
    with pytest.raises(ValueError, match="non-empty"):
        run.predict(["fine", "  "])


def test_doctor_passes_a_text_run(tiny_text_run):
    from shoulders.training.doctor import diagnose

    findings = diagnose(tiny_text_run.path)
    assert all(f.ok for f in findings), [f for f in findings if not f.ok]
    assert {"inference mode", "pooling head", "tokenizer saved", "test split untouched"} <= {f.check for f in findings}


def test_cli_trains_predicts_and_reports_bad_rows(tmp_path, cache_dir):
    table = make_review_table(tmp_path / "reviews.csv", per_class=12, sep=",")
    with open(table, "a", encoding="utf-8") as handle:
        handle.write(",positive\n")  # empty text
        handle.write("a review without a label,\n")
    with open(table, "ab") as handle:
        handle.write(b"caf\xe9 au lait,positive\n")  # Latin-1 bytes, not UTF-8
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(table), "--task", "text", "--strategy", "feature-extraction", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    bad = json.loads((out / "bad_files.json").read_text())
    reasons = {b["path"]: b["reason"] for b in bad}
    assert len(bad) == 3 and all(path.startswith("reviews.csv:") for path in reasons)
    assert any("UTF-8" in reason for reason in reasons.values())
    assert "skipped files" in result.output
    lines = tmp_path / "lines.txt"
    lines.write_text("what a wonderful film\n\nboring and dull\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", str(out), "--text", "I loved it", "--text-file", str(lines), "--json", "--top-k", "1"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output)
    assert [a["text"] for a in answers] == ["I loved it", "what a wonderful film", "boring and dull"]
    assert [a["top"][0]["label"] for a in answers] == ["positive", "positive", "negative"]
    result = runner.invoke(app, ["predict", str(out), str(lines), "--json", "--top-k", "1"])  # a .txt INPUT: a text per line
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == answers[1:]


def test_text_options_without_task_text_are_refused():
    with pytest.raises(ConfigError, match="--task text"):
        RunConfig(data="x.tsv", max_train=100)
    with pytest.raises(ValueError, match="image backbone"):
        shoulders.train("x.tsv", task="text", backbone="efficientnet_lite0", progress=False)


@pytest.mark.slow
def test_sst2_slice_beats_chance_by_far(tmp_path, cache_dir):
    if not SST2.exists():
        pytest.skip("../shared/datasets/sst2 is not present")
    run = shoulders.train(
        SST2 / "train.tsv", task="text", test_file=str(SST2 / "test.tsv"), max_train=600, epochs_finetune=1,
        out=tmp_path / "sst2", progress=False,
    )
    assert run.metrics["test"]["count"] == 872
    assert run.metrics["test_accuracy"] > 0.72  # chance 0.51; the frozen encoder alone gives ~0.79 on 5000 rows


@pytest.mark.slow
def test_text_recipe_runs_on_the_jax_backend(tmp_path):
    pytest.importorskip("jax")
    table = make_review_table(tmp_path / "reviews.tsv", per_class=15)
    script = textwrap.dedent(
        f"""
        import json, keras, shoulders
        assert keras.backend.backend() == "jax"
        run = shoulders.train({str(table)!r}, task="text", out={str(tmp_path / "run")!r}, epochs_head=15,
                              epochs_finetune=1, progress=False, cache_dir={str(tmp_path / "cache")!r})
        again = shoulders.load_run(run.path)
        scored = run.metrics["test_predictions"]
        predicted = again.predict([p["text"] for p in scored]).argmax(1)
        print(json.dumps({{"accuracy": run.metrics["test_accuracy"], "epochs2": run.metrics["epochs_phase2"],
                          "backend": json.loads((run.path / "config.json").read_text())["versions"]["keras_backend"],
                          "reload_agrees": [again.classes[i] for i in predicted] == [p["predicted"] for p in scored]}}))
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "SHOULDERS_REPORT": "off", "SHOULDERS_TRACKING": "off"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and result["epochs2"] == 1
    assert result["accuracy"] >= 0.8 and result["reload_agrees"]


@pytest.mark.slow
def test_text_run_resumes_after_a_kill_in_phase_2(tmp_path):
    """Phase 2 trains on cached states through a model of the top: a killed run still resumes where it was."""
    table = make_review_table(tmp_path / "reviews.tsv", per_class=20)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "shoulders.cli.main", "train", str(table), "--task", "text", "--out", str(out),
               "--batch-size", "4", "--epochs-head", "3", "--epochs-finetune", "6", "--patience", "6", "--quiet"]
    env = {**os.environ, "SHOULDERS_REPORT": "off", "SHOULDERS_TRACKING": "off", "SHOULDERS_CACHE": str(tmp_path / "cache")}
    logged = train_until_killed(command, out, env)
    assert not (out / "metrics.json").exists()
    done = {entry["epoch"] for entry in logged if entry["phase"] == "phase2"}

    resume = [argument for argument in command if argument != "--quiet"] + ["--resume"]  # epoch lines on stderr
    result = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rerun = [int(line.split()[2].split("/")[0]) - 1 for line in result.stderr.splitlines() if line.startswith("phase2 epoch")]
    assert rerun and min(rerun) >= max(done)  # it went on from the last finished epoch (at most that one again)
    assert len(rerun) <= 6 - len(done) + 1
    epochs = [entry["epoch"] for entry in json.loads((out / "history.json").read_text())]
    assert epochs == list(range(3 + 6))  # continuous numbering, no epoch twice, none skipped
    run = shoulders.load_run(out)
    scored = run.metrics["test_predictions"]
    assert [run.classes[i] for i in run.predict([p["text"] for p in scored]).argmax(1)] == [p["predicted"] for p in scored]
