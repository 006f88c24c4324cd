"""Layouts, validation, duplicates, honest splits and the decode-once cache."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shoulders.data import DataError, SplitSettings, load_digits, prepare

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def _photo(path: Path, seed: int, size: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _classes(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    for offset, (name, count) in enumerate(counts.items()):
        for index in range(count):
            _photo(root / name / f"{index:03d}.png", seed * 10_000 + offset * 1000 + index)
    return root


def test_class_folders_split_70_15_15_stratified_and_seeded(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 20, "b": 20})
    data = prepare(root, 16, split=SplitSettings(seed=1), progress=False)
    sizes = {name: len(rows) for name, rows in data.splits.items()}
    assert sizes == {"train": 28, "val": 6, "test": 6}
    for rows in data.splits.values():
        assert set(data.labels[rows]) == {0, 1}
    assert prepare(root, 16, split=SplitSettings(seed=1), progress=False).split_files() == data.split_files()
    assert prepare(root, 16, split=SplitSettings(seed=2), progress=False).split_files() != data.split_files()
    assert "70/15/15" in data.split_note


def test_train_and_test_folders_carve_val_from_train(tmp_path, cache_dir):
    _classes(tmp_path / "d" / "train", {"a": 10, "b": 10})
    _classes(tmp_path / "d" / "test", {"a": 3, "b": 3}, seed=1)
    data = prepare(tmp_path / "d", 16, progress=False)
    files = data.split_files()
    assert len(files["test"]) == 6 and all(name.startswith("test/") for name in files["test"])
    assert all(name.startswith("train/") for name in files["train"] + files["val"])
    assert len(files["val"]) == 4


@pytest.mark.parametrize("folder", ["val", "validation"])
def test_a_val_folder_without_test_becomes_the_test_set(tmp_path, cache_dir, folder):
    _classes(tmp_path / "d" / "train", {"a": 10, "b": 10})
    _classes(tmp_path / "d" / folder, {"a": 4, "b": 4}, seed=1)
    data = prepare(tmp_path / "d", 16, progress=False)
    assert all(name.startswith(f"{folder}/") for name in data.split_files()["test"])
    assert f"No test/ folder: {folder}/ (8 images) is used as the test set" in data.split_note
    assert "carved from train/ (15% per class" in data.split_note


def test_hidden_files_and_folders_are_ignored_and_other_files_reported(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 5, "b": 5})
    (root / ".ipynb_checkpoints" / "x").mkdir(parents=True)
    _photo(root / "a" / ".hidden.png", 99)
    (root / "a" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "b" / "notes.txt").write_text("labels are great")
    data = prepare(root, 16, progress=False)
    assert data.classes == ("a", "b")
    assert [(bad.path, bad.reason) for bad in data.bad_files] == [("b/notes.txt", "not an image file (.txt)")]
    assert not any(".hidden" in name for name in data.names)


def test_undecodable_files_are_listed_and_skipped_not_fatal(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 5, "b": 5})
    (root / "a" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(root / "b" / "cmyk.jpg")
    _photo(root / "b" / "dot.png", 5, size=1)
    data = prepare(root, 16, progress=False)
    assert [bad.path for bad in data.bad_files] == ["a/corrupt.jpg"]
    all_rows = np.concatenate(list(data.splits.values()))
    assert "a/corrupt.jpg" not in {data.names[row] for row in all_rows}
    assert {"b/cmyk.jpg", "b/dot.png"} <= {data.names[row] for row in all_rows}


def test_fewer_than_two_classes_is_a_clear_error(tmp_path, cache_dir):
    _classes(tmp_path / "d", {"cats": 5})
    with pytest.raises(DataError, match=r"found 1 class folder .* \(cats\); need at least 2"):
        prepare(tmp_path / "d", 16, progress=False)


def test_an_empty_class_and_a_one_image_class_are_clear_errors(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 5, "b": 5})
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="'empty' has no usable images"):
        prepare(root, 16, progress=False)
    shutil.rmtree(root / "empty")
    _photo(root / "lonely" / "0.png", 77)
    with pytest.raises(DataError, match="'lonely' has only 1 usable image"):
        prepare(root, 16, progress=False)


def test_missing_folder_and_mismatched_split_classes(tmp_path, cache_dir):
    with pytest.raises(DataError, match="not a folder"):
        prepare(tmp_path / "nope", 16, progress=False)
    _classes(tmp_path / "d" / "train", {"a": 5, "b": 5})
    _classes(tmp_path / "d" / "test", {"a": 3}, seed=1)
    with pytest.raises(DataError, match="same classes"):
        prepare(tmp_path / "d", 16, progress=False)


def test_duplicates_within_class_across_classes_and_across_splits(tmp_path, cache_dir):
    root = tmp_path / "d"
    _classes(root / "train", {"a": 6, "b": 6})
    _classes(root / "test", {"a": 3, "b": 3}, seed=1)
    shutil.copy(root / "train/a/000.png", root / "train/a/copy.png")  # within class
    shutil.copy(root / "train/a/001.png", root / "train/b/conflict.png")  # across classes: label conflict
    shutil.copy(root / "train/b/002.png", root / "test/b/leak.png")  # across splits: leakage
    data = prepare(root, 16, progress=False)
    found = {dup.kind: dup for dup in data.duplicates}
    assert found["within_class"].kept == "train/a/000.png" and found["within_class"].dropped == ("train/a/copy.png",)
    assert found["across_classes"].kept is None
    assert set(found["across_classes"].dropped) == {"train/a/001.png", "train/b/conflict.png"}
    assert found["across_splits"].kept == "train/b/002.png" and found["across_splits"].dropped == ("test/b/leak.png",)
    kept = set(data.names)
    assert not {"train/a/copy.png", "train/a/001.png", "train/b/conflict.png", "test/b/leak.png"} & kept


def test_second_prepare_decodes_nothing_and_maps_the_same_pixels(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 6, "b": 6})
    first = prepare(root, 16, progress=False)
    assert first.decoded_now == 12
    second = prepare(root, 16, progress=False)
    assert second.decoded_now == 0
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(first.images), np.asarray(second.images))
    assert prepare(root, 20, progress=False).decoded_now == 12  # another size is another cache entry
    _photo(root / "a" / "new.png", 1234)
    assert prepare(root, 16, progress=False).decoded_now == 13  # changed data, new entry


def test_a_leftover_partial_cache_file_is_ignored(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 4, "b": 4})
    first = prepare(root, 16, progress=False)
    final = Path(first.cache_path)
    final.unlink()
    (final.parent / (final.stem + ".999.partial.npy")).write_bytes(b"half written")
    again = prepare(root, 16, progress=False)
    assert again.decoded_now == 8
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(first.images))


def test_digits_is_an_offline_rgb_dataset(cache_dir):
    data = load_digits(32)
    assert data.classes == tuple(str(d) for d in range(10))
    assert data.images.shape == (1797, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.images.max() == 255
    assert sum(len(rows) for rows in data.splits.values()) == 1797
    assert np.array_equal(data.images[0, ..., 0], data.images[0, ..., 2])  # grayscale repeated
    assert load_digits(32).decoded_now == 0


@pytest.mark.slow
def test_hymenoptera_val_folder_is_the_test_set(cache_dir):
    root = SHARED / "datasets" / "hymenoptera"
    if not root.exists():
        pytest.skip("shared datasets not present")
    data = prepare(root, 64, progress=False)
    assert data.classes == ("ants", "bees")
    assert len(data.splits["test"]) == 153
    assert "val/ (153 images) is used as the test set" in data.split_note
    assert len(data.splits["train"]) + len(data.splits["val"]) == 245 - len(data.bad_files)
    assert [item.path for item in data.suspicious] == ["train/ants/imageNotFound.gif"]
