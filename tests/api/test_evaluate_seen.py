"""evaluate --data warns when the data holds images (or texts) the run trained or validated on."""

import json
import shutil

import keras
import numpy as np
from typer.testing import CliRunner

from shoulders.api.evaluate import evaluate_run
from shoulders.cli.main import app
from shoulders.config import RunConfig
from shoulders.data import SplitSettings, prepare
from shoulders.data.splits import text_sha256
from shoulders.runs import layout
from shoulders.runs.writer import RunFolder
from shoulders.text.data import TextData


def _run_folder(tmp_path, colour_folder):
    """A finished image run in miniature: the real data records (seen.json included) and a small model."""
    data = prepare(colour_folder, 32, split=SplitSettings(seed=0), cache_dir=tmp_path / "cache", progress=False)
    folder = RunFolder(tmp_path / "run")
    folder.write_data(data)
    config = {**RunConfig(data=str(colour_folder), image_size=32).to_dict(), "image_size_used": 32, "crop_fraction_used": 1.0}
    for name, value in ((layout.CONFIG, config), (layout.METRICS, {"test_accuracy": 1.0}), (layout.HISTORY, [])):
        (folder.path / name).write_text(json.dumps(value))
    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inputs))).save(folder.path / layout.MODEL)
    folder.write_arrays(layout.TEST_REFERENCE, {"inputs": np.zeros((1, 32, 32, 3), np.uint8), "labels": np.zeros(1, np.int64)})
    return folder.path, data


def test_seen_json_holds_the_train_and_val_hashes(tmp_path, colour_folder):
    path, data = _run_folder(tmp_path, colour_folder)
    seen = json.loads((path / layout.SEEN).read_text())
    assert set(seen) == {"train", "val"} and len(seen["train"]) == len(data.splits["train"])
    assert data.hashes[data.splits["test"][0]] not in seen["train"] + seen["val"]


def test_evaluating_on_images_the_run_saw_warns_with_the_count(tmp_path, colour_folder):
    path, data = _run_folder(tmp_path, colour_folder)
    other = tmp_path / "other"
    for split, count in (("train", 3), ("val", 1), ("test", 2)):
        for row in data.splits[split][:count]:
            name = data.names[row]
            (other / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(colour_folder / name, other / name.replace(".png", f"-{split}.png"))
    result = evaluate_run(path, other)
    assert result["count"] == 6
    assert result["warnings"] == [
        f"4 of the 6 images in {other} are ones the run trained on (3) or validated on (1): same content. "
        "This score is not an honest test; evaluate on images it has never seen."
    ]
    cli = CliRunner().invoke(app, ["evaluate", str(path), "--data", str(other)])
    assert cli.exit_code == 0 and "warning: 4 of the 6 images" in " ".join(cli.output.split())


def test_unseen_images_give_no_warning(tmp_path, colour_folder):
    path, data = _run_folder(tmp_path, colour_folder)
    other = tmp_path / "other"
    for row in data.splits["test"]:
        (other / data.names[row]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(colour_folder / data.names[row], other / data.names[row])
    assert evaluate_run(path, other)["warnings"] == []


def test_texts_are_hashed_by_content():
    data = TextData(("a", "b"), ("good", "bad", "fine"), np.array([0, 1, 0]), ("r1", "r2", "r3"),
                    {"train": np.array([0]), "val": np.array([1]), "test": np.array([2])})
    assert data.seen() == {"train": [text_sha256("good")], "val": [text_sha256("bad")]}
