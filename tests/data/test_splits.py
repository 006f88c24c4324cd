"""The layout, split and record helpers both loaders (images and texts) share."""

import hashlib

import numpy as np
import pytest

from shoulders.data import DataError, DataOptionError, ImageDecodeError, SplitSettings
from shoulders.data.images import ImageOptionError, PixelArrayError, height_and_width
from shoulders.data.splits import (
    SPLIT_ORDER,
    Wording,
    find_layout,
    fingerprint,
    split_note,
    split_rows,
    unlabelled_files,
)
from shoulders.errors import ShouldersError

WORDING = Wording("thing", "things", "things", "add things to it", useful_count=10)


@pytest.mark.parametrize("error", [DataError, DataOptionError, ImageDecodeError, ImageOptionError, PixelArrayError])
def test_errors_are_shoulders_errors_that_keep_their_builtin(error):
    assert issubclass(error, ShouldersError) and issubclass(error, ValueError)


def test_split_settings_refuse_impossible_fractions():
    assert SplitSettings() == SplitSettings(0.15, 0.15, 0)
    with pytest.raises(DataOptionError, match=r"sum to less than 1, e.g. 0.15 and 0.15. Received: 0.5 and 0.5"):
        SplitSettings(val_fraction=0.5, test_fraction=0.5)


def test_height_and_width_validates_the_image_size():
    assert height_and_width(8) == (8, 8) and height_and_width((6, 10)) == (6, 10)
    with pytest.raises(ImageOptionError, match="image size must be a positive int"):
        height_and_width(0)


@pytest.mark.parametrize(
    ("folders", "expected"),
    [
        (["a", "b"], {"pool": "."}),
        (["train"], {"pool": "train"}),
        (["train", "Val"], {"train": "train", "test": "Val"}),
        (["train", "test", "validation"], {"train": "train", "val": "validation", "test": "test"}),
    ],
)
def test_find_layout_names_the_folder_feeding_each_split(tmp_path, folders, expected):
    for name in [*folders, ".hidden"]:
        (tmp_path / name).mkdir()
    found = find_layout(tmp_path)
    assert {split: path.relative_to(tmp_path).as_posix() for split, path in found.items()} == expected


def test_unlabelled_files_lists_only_data_files_next_to_the_class_folders(tmp_path):
    for name in ("stray.TXT", "README.md", ".hidden.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "a").mkdir()
    [bad] = unlabelled_files(tmp_path, tmp_path.parent, [".txt"])
    assert bad.path == f"{tmp_path.name}/stray.TXT" and "no label" in bad.reason


def test_split_rows_is_stratified_seeded_and_leaves_out_unknown_sources():
    labels = np.repeat([0, 1], 20)
    given = np.array(["pool"] * 39 + ["undecodable"])
    splits, note, subset = split_rows(labels, given, ("a", "b"), {"pool": "here"}, SplitSettings(seed=3), WORDING)
    assert list(splits) == list(SPLIT_ORDER) and note is None and subset is None
    assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(39))
    assert {name: len(rows) for name, rows in splits.items()} == {"train": 27, "val": 6, "test": 6}
    again, _, _ = split_rows(labels, given, ("a", "b"), {"pool": "here"}, SplitSettings(seed=3), WORDING)
    assert all(np.array_equal(splits[name], again[name]) for name in SPLIT_ORDER)
    text = split_note({"pool": "Here"}, splits, SplitSettings(seed=3), WORDING)
    assert text == "Here: split 70/15/15 into train/val/test, stratified by class (seed 3)."


def test_a_class_missing_from_a_given_test_set_names_the_source_in_the_loaders_words():
    labels = np.array([0, 0, 0, 1, 1, 1, 0])
    given = np.array(["train"] * 6 + ["test"])
    with pytest.raises(DataError, match=r"^class 'b' has no usable things in t/: add things to it\.$"):
        split_rows(labels, given, ("a", "b"), {"train": "train/", "test": "t/"}, SplitSettings(), WORDING)


def test_fingerprint_hashes_tab_joined_records():
    expected = hashlib.sha256(b"a\t1\tx\nb\t2\ty\n").hexdigest()
    assert fingerprint([("a", 1, "x"), ("b", 2, "y")]) == expected


def test_a_class_too_small_for_every_split_is_named_with_the_split_it_misses():
    labels = np.array([0] * 20 + [1] * 2)  # class 1 passes the minimum of 2, but 2 cannot fill 3 splits
    given = np.array(["pool"] * len(labels))
    with pytest.raises(DataError, match=r"the val split has no things of class 'b' \(2 usable things\): every split"):
        split_rows(labels, given, ("a", "b"), {"pool": "the data"}, SplitSettings(), WORDING)


def test_every_split_holds_every_class_once_each_has_three():
    labels = np.array([0] * 20 + [1] * 3)
    splits, _, _ = split_rows(labels, np.array(["pool"] * len(labels)), ("a", "b"), {"pool": "the data"}, SplitSettings(), WORDING)
    assert all(set(labels[splits[name]]) == {0, 1} for name in SPLIT_ORDER)
