"""Feature-extraction throughput: shoulders' extraction path as a fraction of bare ``predict``.

One process, one model (``backbones.feature_extractor("efficientnet_lite0")``: raw pixels ->
1280 pooled features), one uint8 array of already-decoded images. After a warm-up of both paths,
it alternates, ``--rounds`` times (default 3):

    bare:      model.predict(x, batch_size=B, verbose=0)
    shoulders: shoulders.training.features.extract_features(model, x, batch_size=B)
               (batch by batch, rich progress bar, float32 (N, 1280) out)

and prints the median images/second of each and their ratio (target: >= 0.90).

Images: hymenoptera train/ + val/ decoded once with PIL (RGB, first frame of the GIF, resized to
224x224 bilinear, no crop, as image_dataset_from_directory does), or with --random uniform random
uint8 pixels of the same shape. --memmap hands shoulders a read-only np.memmap of the same array
(as its decode cache does), --tile K repeats the images K times for longer measurements.

    python bench/feature_throughput.py [--batch-size 64] [--rounds 3] [--random] [--memmap] [--tile 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "hymenoptera"
BACKBONE = "efficientnet_lite0"
SIZE = 224
TARGET = 0.90
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}  # image_dataset_from_directory's formats


def decode_folder(data: Path) -> np.ndarray:
    files = sorted(p for split in ("train", "val") for p in (data / split).rglob("*") if p.suffix.lower() in EXTENSIONS)
    if not files:
        raise SystemExit(f"no images under {data}/train or {data}/val: pass --data DIR, or --random")
    images = np.empty((len(files), SIZE, SIZE, 3), dtype=np.uint8)
    for i, path in enumerate(files):
        with Image.open(path) as image:
            images[i] = np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
    return images


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train/ and val/ (default: ../shared/datasets/hymenoptera)")
    parser.add_argument("--random", action="store_true", help="random uint8 pixels (398 images unless --count) instead of decoding --data")
    parser.add_argument("--count", type=int, default=398, help="number of random images with --random")
    parser.add_argument("--tile", type=int, default=1, help="repeat the images this many times (longer, steadier measurements)")
    parser.add_argument("--batch-size", type=int, default=32, help="B for both paths (extract_features' default: 32)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements of each path; medians reported")
    parser.add_argument("--memmap", action="store_true", help="give extract_features a read-only np.memmap of the array")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.random:
        images = np.random.default_rng(0).integers(0, 256, size=(args.count, SIZE, SIZE, 3), dtype=np.uint8)
        source = f"{args.count} random uint8 images"
    else:
        started = time.perf_counter()
        images = decode_folder(args.data)
        source = f"{len(images)} hymenoptera train+val images decoded with PIL in {time.perf_counter() - started:.1f} s"
    if args.tile > 1:
        images = np.concatenate([images] * args.tile)
        source += f", tiled x{args.tile}"

    from shoulders import backbones
    from shoulders.training.features import extract_features
    from shoulders.image.model import build_classifier
    from shoulders.training.model import fast_feature_model

    model = backbones.feature_extractor(BACKBONE)
    # What training really runs: the classifier's frozen backbone in inference form (BatchNorm folded).
    folded = fast_feature_model(build_classifier(BACKBONE, 2), backbones.get(BACKBONE))
    batch = args.batch_size

    with tempfile.TemporaryDirectory(prefix="shoulders-throughput-") as tmp:
        shoulders_input = images
        if args.memmap:
            path = Path(tmp) / "images.npy"
            np.save(path, images)
            shoulders_input = np.load(path, mmap_mode="r")
            source += ", memmap for shoulders"
        print(f"{BACKBONE}, {source}, {images.shape[0]} x {SIZE}x{SIZE}x3 uint8, batch size {batch}, {os.cpu_count()} CPUs", flush=True)

        def bare() -> np.ndarray:
            return model.predict(images, batch_size=batch, verbose=0)

        def shoulders() -> np.ndarray:
            return extract_features(model, shoulders_input, batch_size=batch)

        def shoulders_folded() -> np.ndarray:
            return extract_features(folded, shoulders_input, batch_size=batch)

        # Warm-up: traces/compiles every path (full and partial batches), outside the timings.
        reference, ours, ours_folded = bare(), shoulders(), shoulders_folded()
        difference = float(np.max(np.abs(np.asarray(reference, dtype=np.float32) - ours)))
        folded_difference = float(np.max(np.abs(np.asarray(reference, dtype=np.float32) - ours_folded)))

        rates: dict[str, list[float]] = {"bare": [], "shoulders": [], "folded": []}
        paths = [("bare", bare), ("shoulders", shoulders), ("folded", shoulders_folded)]
        for round_ in range(args.rounds):
            for name, fn in paths if round_ % 2 == 0 else paths[::-1]:
                rate = len(images) / timed(fn)
                rates[name].append(rate)
                print(f"  round {round_ + 1}/{args.rounds} {name:9s}: {rate:7.1f} images/s", flush=True)
        bare_rates, shoulders_rates = rates["bare"], rates["shoulders"]

    bare_rate = statistics.median(bare_rates)
    shoulders_rate = statistics.median(shoulders_rates)
    fraction = shoulders_rate / bare_rate
    print()
    print(f"bare model.predict:          {bare_rate:7.1f} images/s (median of {args.rounds})")
    print(f"shoulders extract_features:  {shoulders_rate:7.1f} images/s (median of {args.rounds})")
    print(f"fraction of bare predict:    {fraction:.3f}   target >= {TARGET:.2f}: {'MET' if fraction >= TARGET else 'NOT MET'}")
    print(f"max |feature difference|:    {difference:.2e}")
    folded_rate = statistics.median(rates["folded"])
    print(f"as training runs it (BatchNorm folded): {folded_rate:7.1f} images/s = {folded_rate / bare_rate:.2f}x bare predict, "
          f"max |feature difference| {folded_difference:.2e}")
    print(json.dumps({
        "images": int(images.shape[0]),
        "batch_size": batch,
        "bare_images_per_s": round(bare_rate, 2),
        "shoulders_images_per_s": round(shoulders_rate, 2),
        "fraction": round(fraction, 4),
        "target_met": fraction >= TARGET,
        "max_abs_feature_difference": difference,
        "folded_images_per_s": round(folded_rate, 2),
        "folded_fraction": round(folded_rate / bare_rate, 4),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
