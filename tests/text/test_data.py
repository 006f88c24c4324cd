"""Text layouts, column detection, bad rows, duplicates, given and carved splits, --max-train."""

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from shoulders.data import DataError, Duplicate, SplitSettings
from shoulders.text.data import TextData, load_text_data

SST2 = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "sst2"


def _table(path: Path, header: str | None, rows: list[tuple[str, str]], delimiter: str = ",") -> Path:
    lines = ([header] if header is not None else []) + [f"{text}{delimiter}{label}" for text, label in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rows(counts: dict[str, int], prefix: str = "row") -> list[tuple[str, str]]:
    return [(f"{prefix} {label} number {index}", label) for label, count in counts.items() for index in range(count)]


def _texts(root: Path, counts: dict[str, int], prefix: str = "doc") -> Path:
    for label, count in counts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            (root / label / f"{index:03d}.txt").write_text(f"{prefix} {label} {index}\n", encoding="utf-8")
    return root


def _sizes(data: TextData) -> dict[str, int]:
    return {split: len(rows) for split, rows in data.splits.items()}


def test_csv_with_header_splits_70_15_15_stratified_and_seeded(tmp_path):
    path = _table(tmp_path / "reviews.csv", "text,label", _rows({"1": 20, "0": 20}))
    data = load_text_data(path, split=SplitSettings(seed=1))
    assert data.classes == ("0", "1")  # labels stay strings, sorted
    assert data.labels.dtype == np.int64
    assert _sizes(data) == {"train": 28, "val": 6, "test": 6} and list(data.splits) == ["train", "val", "test"]
    for rows in data.splits.values():
        assert set(data.labels[rows].tolist()) == {0, 1}
    assert sorted(np.concatenate(list(data.splits.values())).tolist()) == list(range(40))
    assert data.names[0] == "reviews.csv:2"  # file name and 1-based line: the header is line 1
    assert load_text_data(path, split=SplitSettings(seed=1)).split_files() == data.split_files()
    assert load_text_data(path, split=SplitSettings(seed=2)).split_files() != data.split_files()
    assert data.split_note == "reviews.csv: split 70/15/15 into train/val/test, stratified by class (seed 1)."
    texts, labels = data.subset("test")
    assert len(texts) == 6 and all(isinstance(text, str) for text in texts)
    assert [data.classes[label] for label in labels] == [text.split()[1] for text in texts]
    summary = data.summary()
    assert set(summary) == {
        "source", "class_counts", "bad_files", "suspicious_files", "duplicates", "split_note", "notes",
    }
    assert summary["class_counts"]["train"] == {"0": 14, "1": 14} and summary["suspicious_files"] == []


def test_quoted_csv_fields_keep_commas_and_newlines_and_row_ids_name_the_starting_line(tmp_path):
    path = tmp_path / "quoted.csv"
    body = "".join(f"plain {label} {index},{label}\n" for label in "ab" for index in range(6))
    path.write_bytes(
        ("\ufefftext,label\n" + '"hello, world",a\n' + '"two\nlines",b\n' + "  padded  ,a\n" + body).encode()
    )
    data = load_text_data(path)
    by_name = dict(zip(data.names, data.texts))
    assert by_name["quoted.csv:2"] == "hello, world"
    assert by_name["quoted.csv:3"] == "two\nlines"
    assert by_name["quoted.csv:5"] == "padded"  # surrounding whitespace stripped; line 4 is inside the quotes
    assert data.notes == []  # the BOM did not hide the "text" column


@pytest.mark.parametrize(("name", "delimiter"), [("train.tsv", "\t"), ("train.tab", "\t"), ("train.txt", ";")])
def test_tab_separated_and_sniffed_delimiters(tmp_path, name, delimiter):
    rows = [(f"a text, with a comma {label}{index}", label) for label in "xy" for index in range(10)]
    data = load_text_data(_table(tmp_path / name, f"text{delimiter}label", rows, delimiter))
    assert data.classes == ("x", "y") and len(data.texts) == 20
    assert all(", with a comma" in text for text in data.texts)


def test_columns_by_position_mean_no_header_row(tmp_path):
    rows = [(label, f"text {label} {index}") for label in "ab" for index in range(10)]  # label first
    path = _table(tmp_path / "plain.tsv", None, rows, "\t")
    data = load_text_data(path, text_column=1, label_column=0)
    assert len(data.texts) == 20 and "plain.tsv:1" in data.names  # the first row is data
    assert data.classes == ("a", "b")


def test_known_column_names_are_detected_and_noted(tmp_path):
    rows = [(f"{index},words {index}", "pos" if index % 2 else "neg") for index in range(20)]
    path = _table(tmp_path / "train.csv", "id,Sentence,sentiment", rows)
    data = load_text_data(path)
    assert data.texts[0] == "words 0"
    assert data.notes == [
        "column 'Sentence' used as text (no 'text' column)",
        "column 'sentiment' used as label (no 'label' column)",
    ]
    assert data.summary()["notes"] == data.notes


def test_a_missing_column_names_the_columns_found_and_the_option(tmp_path):
    path = _table(tmp_path / "train.tsv", "sentence\tlabel", _rows({"a": 5, "b": 5}), "\t")
    with pytest.raises(DataError) as error:
        load_text_data(path, text_column="body")
    assert str(error.value) == (
        "no column 'body' in train.tsv; columns: sentence, label. "
        "Pass --text-column sentence (or a position: --text-column 0 for a file without header)."
    )
    unknown = _table(tmp_path / "other.csv", "phrase,polarity", _rows({"a": 5, "b": 5}))
    with pytest.raises(DataError, match=r"no column 'text' in other.csv \(looked for text, sentence"):
        load_text_data(unknown)
    with pytest.raises(DataError, match="no column 'label' in other.csv.*Pass --label-column polarity"):
        load_text_data(unknown, text_column="phrase")


def test_given_test_and_val_files_are_used_as_given(tmp_path):
    train = _table(tmp_path / "train.csv", "text,label", _rows({"a": 10, "b": 10}))
    test = _table(tmp_path / "test.csv", "text,label", _rows({"a": 3, "b": 2}, prefix="held out"))
    val = _table(tmp_path / "dev.csv", "text,label", _rows({"a": 2, "b": 2}, prefix="tuning"))
    data = load_text_data(train, test=test, val=val)
    files = data.split_files()
    assert _sizes(data) == {"train": 20, "val": 4, "test": 5}
    assert all(name.startswith("test.csv:") for name in files["test"])
    assert all(name.startswith("dev.csv:") for name in files["val"])
    assert data.split_note == "train.csv, dev.csv and test.csv used as given."

    only_test = load_text_data(train, test=test)
    assert _sizes(only_test) == {"train": 16, "val": 4, "test": 5}  # validation carved from train.csv
    assert only_test.split_note.startswith("test.csv (5 texts) is the test set; validation was carved from train.csv")

    only_val = load_text_data(train, val=val)
    assert all(name.startswith("train.csv:") for name in only_val.split_files()["test"])
    assert only_val.split_note.startswith("dev.csv (4 texts) is the validation set; the test set was carved")


def test_max_train_takes_a_stratified_seeded_subset_before_carving_val(tmp_path):
    train = _table(tmp_path / "train.csv", "text,label", _rows({"a": 300, "b": 100}))
    test = _table(tmp_path / "test.csv", "text,label", _rows({"a": 6, "b": 6}, prefix="held out"))
    data = load_text_data(train, test=test, max_train=101, split=SplitSettings(seed=3))
    pool = np.concatenate([data.splits["train"], data.splits["val"]])
    assert len(pool) == 101 and len(data.splits["test"]) == 12
    counts = Counter(data.labels[pool].tolist())
    assert abs(counts[0] - 101 * 3 / 4) < 1 and abs(counts[1] - 101 / 4) < 1
    assert set(data.labels[data.splits["val"]].tolist()) == {0, 1}
    assert len(data.texts) == 113  # the rows left out by --max-train are not carried along
    assert data.notes == ["--max-train 101: 101 of 400 training rows, stratified by class (seed 3)"]
    assert "the 101 rows of train.csv kept by --max-train" in data.split_note
    again = load_text_data(train, test=test, max_train=101, split=SplitSettings(seed=3))
    assert again.split_files() == data.split_files() and again.fingerprint == data.fingerprint
    other_seed = load_text_data(train, test=test, max_train=101, split=SplitSettings(seed=4))
    assert other_seed.split_files()["train"] != data.split_files()["train"]

    everything = load_text_data(train, test=test, max_train=10_000)
    assert everything.notes == ["--max-train 10000: all 400 training rows kept (no more are available)"]
    assert sum(len(everything.splits[name]) for name in ("train", "val")) == 400


def test_max_train_without_a_test_file_sets_the_test_set_aside_first(tmp_path):
    path = _table(tmp_path / "all.csv", "text,label", _rows({"a": 100, "b": 100}))
    data = load_text_data(path, max_train=50)
    assert len(data.splits["test"]) == 30  # 15% of the whole file, not of the subset
    assert len(data.splits["train"]) + len(data.splits["val"]) == 50
    assert "15% per class set aside as the test set" in data.split_note


def test_bad_rows_are_listed_with_their_row_id_and_skipped(tmp_path):
    path = tmp_path / "train.csv"
    good = "".join(f"fine {label} {index},{label}\n" for label in "ab" for index in range(10))
    path.write_bytes(
        b"text,label\n"
        + b"   ,a\n"  # line 2: empty text
        + b"no label here,\n"  # line 3
        + b"no comma at all\n"  # line 4
        + b"caf\xe9 latin-1,b\n"  # line 5: not UTF-8
        + good.encode()
    )
    data = load_text_data(path)
    reasons = {bad.path: bad.reason for bad in data.bad_rows}
    assert list(reasons) == ["train.csv:2", "train.csv:3", "train.csv:4", "train.csv:5"]
    assert reasons["train.csv:2"] == "empty text"
    assert reasons["train.csv:3"] == "missing label"
    assert reasons["train.csv:4"].startswith("too few fields (1;")
    assert reasons["train.csv:5"].startswith("not valid UTF-8 (byte 0xe9 at character 3 of column 'text')")
    assert len(data.texts) == 20 and data.summary()["bad_files"] == 4
    assert data.bad_files is data.bad_rows  # the run folder writes bad_files.json from either loader


def test_an_unclosed_quote_is_reported_on_the_row_that_swallowed_the_rest(tmp_path):
    path = tmp_path / "train.csv"
    good = "".join(f"fine {label} {index},{label}\n" for label in "ab" for index in range(10))
    path.write_text("text,label\n" + good + '"never closed,a\nlost,b\nlost too,a\n', encoding="utf-8")
    data = load_text_data(path)
    assert len(data.texts) == 20
    [bad] = data.bad_rows
    assert bad.path == "train.csv:22" and "runs over lines 22-24: look for an unclosed quote" in bad.reason


def test_folder_of_class_subfolders(tmp_path):
    root = _texts(tmp_path / "reviews", {"neg": 10, "pos": 10})
    (root / "pos" / "bom.txt").write_bytes("\ufeffwith a byte order mark".encode())
    (root / "pos" / "empty.txt").write_text("  \n", encoding="utf-8")
    (root / "neg" / "broken.txt").write_bytes(b"ok then \xff\xfe")
    (root / "neg" / "notes.md").write_text("not data", encoding="utf-8")
    (root / "neg" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "pos" / ".ipynb_checkpoints").mkdir()
    (root / "pos" / ".ipynb_checkpoints" / "000-checkpoint.txt").write_text("hidden", encoding="utf-8")
    (root / "README.md").write_text("about this data", encoding="utf-8")
    (root / "stray.txt").write_text("which class am I?", encoding="utf-8")
    data = load_text_data(root)
    assert data.classes == ("neg", "pos") and len(data.texts) == 21
    assert "with a byte order mark" in data.texts and "hidden" not in data.texts
    reasons = {bad.path: bad.reason for bad in data.bad_rows}
    assert set(reasons) == {"pos/empty.txt", "neg/broken.txt", "neg/notes.md", "stray.txt"}
    assert reasons["pos/empty.txt"] == "empty text"
    assert reasons["neg/broken.txt"].startswith("not valid UTF-8 (byte 0xff at byte 8)")
    assert reasons["neg/notes.md"].startswith("not a .txt file (.md)")
    assert "no label" in reasons["stray.txt"]
    assert "neg/000.txt" in data.names
    assert data.split_note.startswith("Class folders in reviews/: split 70/15/15")


def test_folder_with_train_and_test_folders_carves_val_from_train(tmp_path):
    _texts(tmp_path / "d" / "train", {"a": 10, "b": 10})
    _texts(tmp_path / "d" / "test", {"a": 3, "b": 3}, prefix="held out")
    data = load_text_data(tmp_path / "d")
    files = data.split_files()
    assert len(files["test"]) == 6 and all(name.startswith("test/") for name in files["test"])
    assert all(name.startswith("train/") for name in files["train"] + files["val"])
    assert len(files["val"]) == 4
    assert data.split_note == "test/ (6 texts) is the test set; validation was carved from train/ (15% per class, seed 0)."


def test_folder_with_val_but_no_test_uses_val_as_the_test_set(tmp_path):
    _texts(tmp_path / "d" / "train", {"a": 10, "b": 10})
    _texts(tmp_path / "d" / "validation", {"a": 2, "b": 2}, prefix="held out")
    data = load_text_data(tmp_path / "d")
    assert all(name.startswith("validation/") for name in data.split_files()["test"])
    assert data.split_note.startswith("No test/ folder: validation/ (4 texts) is used as the test set")


def test_duplicates_within_a_split_across_splits_and_across_classes(tmp_path):
    rows = _rows({"a": 10, "b": 10}) + [("same twice", "a"), ("same twice", "a"), ("leaks", "b"), ("conflict", "a")]
    train = _table(tmp_path / "train.csv", "text,label", rows)  # the extra rows sit on lines 22-25
    test = _table(tmp_path / "test.csv", "text,label", _rows({"a": 2, "b": 2}, "held") + [("leaks", "b"), ("conflict", "b")])
    data = load_text_data(train, test=test)
    assert data.duplicates == [
        Duplicate("within_split", "train.csv:22", ("train.csv:23",)),
        Duplicate("across_splits", "train.csv:24", ("test.csv:6",)),
        Duplicate("across_classes", None, ("train.csv:25", "test.csv:7")),
    ]
    assert data.texts.count("same twice") == 1 and "conflict" not in data.texts
    assert [data.names[row] for row in data.splits["test"] if data.texts[row] == "leaks"] == []
    assert data.summary()["duplicates"] == 3


def test_a_test_label_missing_from_training_is_an_error(tmp_path):
    train = _table(tmp_path / "train.csv", "text,label", _rows({"pos": 10, "neg": 10}))
    test = _table(tmp_path / "test.csv", "text,label", _rows({"pos": 2, "neg": 2, "neutral": 1}, "held"))
    message = r"test.csv has label 'neutral' \(e.g. row test.csv:6\) that train.csv does not have"
    with pytest.raises(DataError, match=message):
        load_text_data(train, test=test)


def test_one_class_or_a_tiny_class_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"found 1 class \(pos\) in one.csv; need at least 2"):
        load_text_data(_table(tmp_path / "one.csv", "text,label", _rows({"pos": 10})))
    with pytest.raises(DataError, match="class 'b' has only 1 usable row in tiny.csv"):
        load_text_data(_table(tmp_path / "tiny.csv", "text,label", _rows({"a": 10, "b": 1})))
    with pytest.raises(DataError, match="class 'empty' has no usable rows in d/"):
        (tmp_path / "d" / "empty").mkdir(parents=True)
        load_text_data(_texts(tmp_path / "d", {"a": 10}))


def test_fingerprint_changes_when_a_label_changes(tmp_path):
    rows = _rows({"a": 10, "b": 10})
    first = load_text_data(_table(tmp_path / "train.csv", "text,label", rows)).fingerprint
    assert load_text_data(_table(tmp_path / "train.csv", "text,label", rows)).fingerprint == first
    rows[0] = (rows[0][0], "b")
    assert load_text_data(_table(tmp_path / "train.csv", "text,label", rows)).fingerprint != first


@pytest.mark.skipif(not (SST2 / "train.tsv").exists(), reason="needs ../shared/datasets/sst2")
def test_sst2_with_its_test_file_and_max_train_loads_fast():
    start = time.perf_counter()
    data = load_text_data(SST2 / "train.tsv", test=SST2 / "test.tsv", max_train=5000)
    seconds = time.perf_counter() - start
    assert data.classes == ("0", "1")
    dropped_from_test = sum(name.startswith("test.tsv:") for dup in data.duplicates for name in dup.dropped)
    assert len(data.splits["test"]) == 872 - dropped_from_test
    assert len(data.splits["train"]) + len(data.splits["val"]) == 5000
    assert data.notes[0] == "column 'sentence' used as text (no 'text' column)"
    assert data.notes[1].startswith("--max-train 5000: 5000 of ")
    assert {dup.kind for dup in data.duplicates} <= {"within_split", "across_splits", "across_classes"}
    assert seconds < 2, f"loading SST-2 took {seconds:.2f} s"
