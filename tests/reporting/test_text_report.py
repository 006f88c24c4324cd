"""report.html of a text run: curves, confusion matrix, and the worst errors as a table of texts (escaped),
never the image gallery (which re-reads images)."""

import json
import re
import shutil

import pytest

from shoulders.reporting import write_run_report


def embedded_pictures(text):
    return re.findall(r'src="data:image/png;base64,([^"]+)"', text)


def copy_run(run, target):
    """The run folder with its model linked, not copied: a report never loads the model."""
    shutil.copytree(run.path, target, ignore=shutil.ignore_patterns("model.keras", "report.html"))
    (target / "model.keras").symlink_to(run.path / "model.keras")
    return target


@pytest.fixture
def no_image_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a text run's report must not load image data")

    monkeypatch.setattr("shoulders.image.inputs.load_data", refuse)


def test_text_run_report_shows_tokens_curves_and_errors(tiny_text_run):
    text = (tiny_text_run.path / "report.html").read_text()
    for heading in ("Training curves", "Confusion matrix", "Per-class metrics", "Worst test errors", "Data", "Lineage"):
        assert heading in text
    assert f"max {tiny_text_run.max_length} tokens" in text and "image size" not in text
    assert f'on {tiny_text_run.metrics["test"]["count"]} test texts' in text
    assert "misclassified test texts" in text or "No test text was misclassified." in text
    assert 'class="card"' not in text
    assert len(embedded_pictures(text)) == 2  # curves and confusion matrix; no thumbnails
    assert tiny_text_run.metrics["weights_sha256"] in text


def test_worst_errors_are_escaped_and_most_confident_first(tiny_text_run, tmp_path, no_image_loading):
    folder = copy_run(tiny_text_run, tmp_path / "run")
    metrics = json.loads((folder / "metrics.json").read_text())
    predictions = metrics["test_predictions"]
    for prediction in predictions:
        prediction["predicted"] = prediction["true"]
    classes = tiny_text_run.classes
    crafted = (
        ("<script>alert('x')</script> & friends", 0.61),
        ("sure of itself and wrong", 0.97),
        ("long " * 400, 0.55),
    )
    for prediction, (words, confidence) in zip(predictions, crafted):
        wrong = next(name for name in classes if name != prediction["true"])
        prediction.update(predicted=wrong, confidence=confidence, text=words)
    (folder / "metrics.json").write_text(json.dumps(metrics))

    text = write_run_report(folder).read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; friends" in text
    assert "3 of 3 misclassified test texts" in text
    assert text.index("sure of itself and wrong") < text.index("&lt;script&gt;") < text.index("long long")
    assert "long " * 400 not in text and "long long …" in text  # a page-long text is cut in the table
    assert predictions[1]["file"] in text and "0.970" in text


def test_text_report_without_errors_says_so(tiny_text_run, tmp_path, no_image_loading):
    folder = copy_run(tiny_text_run, tmp_path / "run")
    metrics = json.loads((folder / "metrics.json").read_text())
    for prediction in metrics["test_predictions"]:
        prediction["predicted"] = prediction["true"]
    (folder / "metrics.json").write_text(json.dumps(metrics))
    assert "No test text was misclassified." in write_run_report(folder).read_text()
