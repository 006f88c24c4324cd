"""Text phase 2, one epoch, two ways, side by side in one process (same data, same weights, same LR):

    full:   the classifier fits on token batches: every step runs the frozen embeddings and lower
            transformer layers forward again before the unfrozen top.
    cached: shoulders' way: the frozen bottom's per-token outputs are computed once, and a model of the
            unfrozen top (the very same layer objects) fits on them.

SST-2 (../shared/datasets/sst2, override with --data FILE), --rows training rows (default 2000),
MiniLM with its top 2 of 6 transformer layers unfrozen. Prints seconds per epoch for each way (median of
--epochs epochs after one warm-up epoch), the one-time cost of the cache, and the ratio full / cached.

    python bench/text_phase2.py [--rows 2000] [--epochs 2] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from shoulders import backbones  # noqa: E402
from shoulders.text.data import load_text_data  # noqa: E402
from shoulders.text.model import build_text_classifier  # noqa: E402
from shoulders.text.inputs import TextInputs  # noqa: E402
from shoulders.training import phases  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "sst2" / "train.tsv"


def epoch_seconds(model: keras.Model, batches, epochs: int, batch_size: int) -> float:
    phases.compile_model(model, 2e-5)
    train = batches("train", batch_size, shuffle=True, seed=0)
    times = []
    for _ in range(epochs + 1):  # the first epoch traces: left out
        started = time.perf_counter()
        model.fit(train, epochs=1, verbose=0)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    data = load_text_data(args.data, max_train=args.rows)
    spec = backbones.get("minilm_l6")
    tokenizer = spec.tokenizer().with_max_length(64)
    inputs = TextInputs(data, tokenizer)
    model = build_text_classifier(backbones.body("minilm_l6"), len(data.classes))
    blocks, _ = phases.unfreeze_top(model, spec, None)

    full = epoch_seconds(model, inputs.batches, args.epochs, args.batch_size)
    started = time.perf_counter()
    top, cached_batches = inputs.finetune_view(model, blocks, None)
    cache_seconds = time.perf_counter() - started
    cached = epoch_seconds(top, cached_batches, args.epochs, args.batch_size)

    rows = len(data.splits["train"])
    print(f"phase 2, {rows} training texts, unfrozen {blocks}, batch {args.batch_size}, backend {keras.backend.backend()}")
    print(f"  full classifier per epoch:   {full:7.1f} s")
    print(f"  cached bottom, top per epoch: {cached:7.1f} s  (cache built once in {cache_seconds:.1f} s)")
    print(f"  ratio full / cached: {full / cached:.2f}x per epoch; over 10 epochs "
          f"{10 * full / (10 * cached + cache_seconds):.2f}x with the cache's cost")
    print(json.dumps({"rows": rows, "full_s": round(full, 2), "cached_s": round(cached, 2), "cache_build_s": round(cache_seconds, 2),
                      "ratio": round(full / cached, 2)}))


if __name__ == "__main__":
    main()
