"""report.html from a real (tiny) run: self-contained, with curves, confusion matrix and an error gallery,
checked the way a person sees it: rendered by headless Chromium."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

import shoulders
from shoulders.reporting import write_compare_report

TINY = dict(image_size=32, batch_size=8, epochs_head=40, epochs_finetune=1, patience=5, lr=1e-2, augment=False)


def make_confusable_folder(root, per_class=20, size=32, seed=0):
    """red and crimson are the same colour (the model must make errors there); blue is easy."""
    rng = np.random.default_rng(seed)
    for name, colour in {"red": (200, 30, 30), "crimson": (200, 30, 30), "blue": (30, 40, 200)}.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{index:03d}.png")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOULDERS_CACHE", str(root / "cache"))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        yield shoulders.train(make_confusable_folder(root / "photos"), out=root / "run", progress=False, **TINY)


def embedded_images(text):
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def test_run_report_is_self_contained_and_complete(run):
    text = (run.path / "report.html").read_text()
    assert "http://" not in text and "https://" not in text  # opens offline, years later
    for heading in ("Training curves", "Confusion matrix", "Per-class metrics", "Worst test errors", "Data", "Lineage"):
        assert heading in text
    assert "dashed line marks where" in text  # two-phase: fine-tuning start is marked
    errors = [p for p in run.metrics["test_predictions"] if p["true"] != p["predicted"]]
    assert errors, "red and crimson are indistinguishable: the run must make test errors"
    assert text.count('class="card"') == min(len(errors), 12)
    assert errors[0]["file"] in text and run.metrics["data_fingerprint"] in text
    images = embedded_images(text)
    assert len(images) == 2 + min(len(errors), 12)  # curves, confusion matrix, thumbnails
    for image in images:
        assert np.asarray(image.convert("L"), dtype=float).std() > 5  # drawn, not blank


def test_compare_report_renders_table_and_curve(tmp_path):
    from shoulders.io import write_json

    row = dict(seeds=2, test_accuracy_sd=0.02, train_seconds_mean=3.0, trainable_params=10, total_params=100)
    write_json(tmp_path / "comparison.json", {
        "name": "c", "data": "photos", "backbone": "efficientnet_lite0", "seeds": [0, 1], "status": "finished", "note": "n",
        "table": [dict(row, strategy="two-phase", test_accuracy_mean=0.95), dict(row, strategy="scratch", test_accuracy_mean=0.6)],
        "curve": [dict(row, strategy=s, size=n, train_images_per_class=k, test_accuracy_mean=a)
                  for s, n, k, a in (("two-phase", 5, 5, 0.8), ("two-phase", "all", 20, 0.95), ("scratch", 5, 5, 0.4), ("scratch", "all", 20, 0.6))],
        "runs": [],
    })
    text = write_compare_report(tmp_path).read_text()
    assert "0.9500 ± 0.0200" in text and "Data efficiency" in text
    assert len(embedded_images(text)) == 2


@pytest.mark.slow
def test_chromium_renders_the_run_report(run, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("chromium not installed (CI installs it)")
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,3000",
         (run.path / "report.html").resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1280)
    assert pixels.std() > 10  # not a blank page
    coloured_rows = np.flatnonzero((pixels < 200).mean(axis=1) > 0.05)  # rows with drawing (plots, thumbnails)
    assert coloured_rows.size > 300 and coloured_rows.max() > 1200  # the plots and the gallery below them rendered
