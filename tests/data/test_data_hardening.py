"""Edge cases a user's real folders hit: odd files, odd layouts, odd pixels, and interrupted caches."""

import gc
import io
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shoulders.data import DataError, ImageDecodeError, SplitSettings, decode_many, load_digits, load_image, prepare
from shoulders.data import images as images_module
from shoulders.data.cache import cached_images
from test_dataset import _classes, _photo  # same folder: the shared photo makers


def _gif_bytes(frames: int = 1) -> bytes:
    rng = np.random.default_rng(3)
    pictures = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).convert("P") for _ in range(frames)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "GIF", save_all=frames > 1, append_images=pictures[1:])
    return buffer.getvalue()


# Pixels ---------------------------------------------------------------------------------------------


def test_a_truncated_gif_is_an_image_decode_error_not_a_raw_oserror(tmp_path):
    whole = _gif_bytes()
    broken = tmp_path / "broken.gif"
    broken.write_bytes(whole[: len(whole) // 2])  # header intact, pixel data cut: fails in decoding, not opening
    with pytest.raises(ImageDecodeError, match=r"broken\.gif: cannot decode as an image"):
        load_image(broken, 16)
    _, failures, _ = decode_many([broken], 16, progress=False)
    assert [index for index, _ in failures] == [0]


def test_unknown_format_message_names_the_file_once_and_the_fix(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ImageDecodeError) as caught:
        load_image(path)
    message = str(caught.value)
    assert message.count("notes.png") == 1
    assert "not a recognised image format" in message and "replace it with a JPEG or PNG" in message


def test_animated_gif_files_are_closed_after_decoding(tmp_path):
    path = tmp_path / "moving.gif"
    path.write_bytes(_gif_bytes(frames=3))  # multi-frame files keep their handle open until closed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_image(path, 16)
        gc.collect()
    assert not [warning for warning in caught if issubclass(warning.category, ResourceWarning)]


def test_decoding_changes_no_global_state_of_pillow_or_warnings(tmp_path, monkeypatch):
    path = _photo(tmp_path / "x.png", 1, size=40)
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    monkeypatch.setattr(images_module, "MAX_PIXELS", 1000)
    out, failures, _ = decode_many([path] * 8, 16, workers=4, progress=False)
    assert [index for index, _ in failures] == list(range(8))
    assert "1,600 pixels" in failures[0][1]  # names the pixel count
    assert Image.MAX_IMAGE_PIXELS == limit and warnings.filters == filters


def test_palette_png_with_transparency_becomes_white(tmp_path):
    picture = Image.new("P", (10, 10), 1)
    picture.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    picture.paste(0, (0, 0, 10, 5))  # top half: index 0, declared transparent
    path = tmp_path / "p.png"
    picture.save(path, transparency=0)
    out = load_image(path)
    assert tuple(out[1, 1]) == (255, 255, 255)
    assert tuple(out[8, 8]) == (255, 0, 0)


def test_bilevel_image_keeps_black_and_white(tmp_path):
    pixels = np.zeros((8, 8), dtype=bool)
    pixels[:, 4:] = True
    path = tmp_path / "bw.png"
    Image.fromarray(pixels).convert("1").save(path)
    out = load_image(path)
    assert tuple(out[0, 0]) == (0, 0, 0) and tuple(out[0, 7]) == (255, 255, 255)


def test_32_bit_integer_image_is_scaled_not_clipped():
    values = np.linspace(0, 2**20, 64, dtype=np.int32).reshape(8, 8)
    out = load_image(Image.fromarray(values, "I"))
    assert out.max() < 5  # values under 2**20 are dark on a 32-bit scale: nothing saturates to white
    sixteen = load_image(Image.fromarray(np.linspace(0, 65535, 64, dtype=np.int32).reshape(8, 8), "I"))
    assert sixteen.min() == 0 and sixteen.max() == 255 and 100 < sixteen.mean() < 155


def test_arrays_must_hold_raw_pixels_in_0_255():
    with pytest.raises(ValueError, match="raw pixel values in 0..255"):
        load_image(np.full((4, 4, 3), -0.5, dtype=np.float32))  # already normalised
    with pytest.raises(ValueError, match="raw pixel values"):
        load_image(np.full((4, 4, 3), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="uint8 or float"):
        load_image(np.zeros((4, 4, 3), dtype=bool))
    assert load_image(np.full((4, 4, 3), 200, dtype=np.int64))[0, 0, 0] == 200


def test_bad_sizes_and_crop_fractions_are_clear_errors(tmp_path):
    path = _photo(tmp_path / "x.png", 1)
    for size in (0, -3, (4,), (4, 4, 4), "224"):
        with pytest.raises(ValueError, match="image size must be a positive int"):
            load_image(path, size)
    with pytest.raises(ValueError, match=r"crop_fraction must be in \(0, 1\]"):
        load_image(path, 8, crop_fraction=1.5)


def test_jpeg_draft_keeps_twice_the_target_across_the_crop_and_the_same_picture(tmp_path):
    y, x = np.mgrid[0:1200, 0:1600]
    pixels = np.stack([x * 255 // 1600, y * 255 // 1200, (x + y) * 255 // 2800], axis=-1).astype(np.uint8)
    path = tmp_path / "big.jpg"
    Image.fromarray(pixels).save(path, quality=95)
    for crop in (1.0, 0.5):
        with Image.open(path) as picture:
            images_module._draft(picture, 64, crop)
            picture.load()
            assert picture.size[0] < 1600  # DCT scaling happened
            assert min(picture.size) * crop >= 2 * 64  # still twice the target across the crop
        reference = np.asarray(images_module.fit_to_size(Image.fromarray(pixels), 64, crop), dtype=np.float64)
        assert np.abs(load_image(path, 64, crop) - reference).mean() < 3


# Folders --------------------------------------------------------------------------------------------


def test_empty_files_are_bad_files_not_duplicates_of_each_other(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 4, "b": 4})
    (root / "a" / "empty.jpg").write_bytes(b"")
    (root / "b" / "empty.jpg").write_bytes(b"")
    data = prepare(root, 16, progress=False)
    assert data.duplicates == []
    assert {bad.path for bad in data.bad_files} == {"a/empty.jpg", "b/empty.jpg"}
    assert all("empty file" in bad.reason for bad in data.bad_files)


def test_images_outside_class_folders_are_reported_and_documents_ignored(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 4, "b": 4})
    _photo(root / "stray.png", 99)
    (root / "README.md").write_text("my photos")
    data = prepare(root, 16, progress=False)
    assert [bad.path for bad in data.bad_files] == ["stray.png"]
    assert "not inside a class folder" in data.bad_files[0].reason


def test_train_val_and_test_folders_are_used_as_given(tmp_path, cache_dir):
    _classes(tmp_path / "d" / "train", {"a": 5, "b": 5})
    _classes(tmp_path / "d" / "val", {"a": 2, "b": 2}, seed=1)
    _classes(tmp_path / "d" / "test", {"a": 3, "b": 3}, seed=2)
    data = prepare(tmp_path / "d", 16, progress=False)
    files = data.split_files()
    assert {split: len(names) for split, names in files.items()} == {"train": 10, "val": 4, "test": 6}
    assert all(name.startswith(f"{split}/") for split, names in files.items() for name in names)
    assert data.split_note == "train/, val/ and test/ used as given."


def test_both_val_and_validation_folders_is_ambiguous(tmp_path, cache_dir):
    for folder in ("train", "val", "validation"):
        _classes(tmp_path / "d" / folder, {"a": 3, "b": 3})
    with pytest.raises(DataError, match="both val/ and validation/"):
        prepare(tmp_path / "d", 16, progress=False)


def test_a_class_with_no_test_images_is_an_error_naming_the_folder(tmp_path, cache_dir):
    _classes(tmp_path / "d" / "train", {"a": 5, "b": 5})
    _classes(tmp_path / "d" / "test", {"a": 2}, seed=1)
    (tmp_path / "d" / "test" / "b").mkdir()
    with pytest.raises(DataError, match="class 'b' has no usable images in test/"):
        prepare(tmp_path / "d", 16, progress=False)


def test_a_class_of_three_gets_one_image_in_every_split(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 3, "b": 20})
    data = prepare(root, 16, progress=False)
    for rows in data.splits.values():
        assert (data.labels[rows] == 0).sum() == 1


def test_impossible_fractions_are_refused_before_any_work(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 3, "b": 3})
    for val, test in ((0.5, 0.5), (0.0, 0.2), (0.2, 1.0)):
        with pytest.raises(ValueError, match="sum to less than 1"):
            prepare(root, 16, split=SplitSettings(val_fraction=val, test_fraction=test), progress=False)
    assert not cache_dir.exists()


def test_a_cache_hit_still_reports_bad_and_suspicious_files(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 4, "b": 4})
    (root / "a" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    Image.new("RGB", (30, 30), (200, 200, 200)).convert("P").save(root / "b" / "placeholder.gif")
    first = prepare(root, 16, progress=False)
    second = prepare(root, 16, progress=False)
    assert second.decoded_now == 0
    assert second.bad_files == first.bad_files and [bad.path for bad in second.bad_files] == ["a/corrupt.jpg"]
    assert [item.path for item in second.suspicious] == ["b/placeholder.gif"]
    assert second.fingerprint == first.fingerprint


# Cache ----------------------------------------------------------------------------------------------


def test_a_damaged_cache_entry_is_rebuilt_not_trusted(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 4, "b": 4})
    first = prepare(root, 16, progress=False)
    Path(first.cache_path).with_suffix(".json").write_text("{not json")
    again = prepare(root, 16, progress=False)
    assert again.decoded_now == 8
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(first.images))
    assert json.loads(Path(again.cache_path).with_suffix(".json").read_text())["failures"] == []


def test_an_interrupted_decode_leaves_no_partial_file_and_no_entry(tmp_path):
    def interrupted(out):
        out[0] = 7
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_images("k" * 40, 3, (4, 4), interrupted, tmp_path)
    assert list((tmp_path / "images").iterdir()) == []
    images, failures, _, _, decoded = cached_images("k" * 40, 3, (4, 4), lambda out: ([], []), tmp_path)
    assert decoded == 3 and failures == [] and images.shape == (3, 4, 4, 3)


def test_stale_partial_files_of_killed_runs_are_cleaned_recent_ones_kept(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    stale, recent = folder / ("k" * 40 + ".111.partial.npy"), folder / ("k" * 40 + ".222.partial.npy")
    for path in (stale, recent):
        path.write_bytes(b"half written")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    cached_images("k" * 40, 1, (2, 2), lambda out: ([], []), tmp_path)
    assert not stale.exists() and recent.exists()


def test_digits_note_follows_the_fractions(cache_dir):
    data = load_digits(8, split=SplitSettings(val_fraction=0.1, test_fraction=0.2, seed=3))
    assert "split 70/10/20" in data.split_note and "seed 3" in data.split_note
    assert {split: len(rows) for split, rows in data.splits.items()} == pytest.approx(
        {"train": 1258, "val": 180, "test": 359}, abs=10
    )


def test_a_whole_folder_copy_gives_the_same_fingerprint_and_reuses_nothing_by_path(tmp_path, cache_dir):
    root = _classes(tmp_path / "d", {"a": 3, "b": 3})
    first = prepare(root, 16, progress=False)
    shutil.copytree(root, tmp_path / "copy")
    second = prepare(tmp_path / "copy", 16, progress=False)
    assert second.fingerprint == first.fingerprint
    assert second.decoded_now == 0  # the key is relative names + content, not where the folder lives
