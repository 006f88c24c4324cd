"""Phase 1 the tutorials' way: the baseline every shoulders benchmark is compared against.

What seed 000 (phase 1: frozen base, head trained for 20 epochs, no early stopping) and seed 003
(``keras.utils.image_dataset_from_directory`` + ``prefetch``, backbone called with
``training=False``) do, written as a tutorial reader would, with the backbone shoulders uses by
default (EfficientNet-Lite0, ImageNet weights, preprocessing inside the model):

* images decoded and resized by ``image_dataset_from_directory`` every epoch (no ``.cache()``);
* the frozen backbone recomputed on every image every epoch (train and validation);
* validation carved from ``train/`` by ``validation_split=0.15`` (not stratified), ``val/`` is the test set.

The GIF placeholder ``train/ants/imageNotFound.gif`` needs no special handling: ``gif`` is one of
``image_dataset_from_directory``'s formats, it decodes the first frame as RGB and trains on it as
an "ant" (the tutorials' way has no bad-file check).

The last line printed is JSON: ``{"test_accuracy": ..., "seconds": ..., "epochs": ...}``, seconds
counted from the start of this process (interpreter start-up included where /proc tells it).

    python bench/tutorial_phase1.py [--data DIR] [--epochs 20] [--seed 0]
"""

from __future__ import annotations

import time

_FIRST_LINE = time.time()  # fallback for the process start where /proc is not there

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "hymenoptera"
IMAGE_SIZE = (224, 224)
BATCH_SIZE = 32
VALIDATION_SPLIT = 0.15
BACKBONE = "efficientnet_lite0"


def process_start_time() -> float:
    """Wall-clock time this process started (Linux /proc), else the time this module began running."""
    try:
        with open("/proc/self/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5): starttime, in clock ticks after boot
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _FIRST_LINE


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train/ and val/ (val/ is the test set)")
    parser.add_argument("--epochs", type=int, default=20, help="phase 1 epochs, no early stopping (seed 000: 20)")
    parser.add_argument("--seed", type=int, default=0, help="split seed and keras.utils.set_random_seed")
    return parser.parse_args()


def main() -> None:
    started = process_start_time()
    args = parse_args()

    import keras
    import tensorflow as tf

    from shoulders import backbones

    keras.utils.set_random_seed(args.seed)

    # Data, as in seed 003: batches of float32 pixels 0..255, decoded from disk every epoch.
    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        args.data / "train",
        validation_split=VALIDATION_SPLIT,
        subset="both",
        seed=args.seed,
        image_size=IMAGE_SIZE,
        batch_size=BATCH_SIZE,
    )
    test_ds = keras.utils.image_dataset_from_directory(args.data / "val", image_size=IMAGE_SIZE, batch_size=BATCH_SIZE)
    autotune = tf.data.AUTOTUNE
    train_ds = train_ds.prefetch(autotune)
    val_ds = val_ds.prefetch(autotune)
    test_ds = test_ds.prefetch(autotune)

    # Model: frozen backbone (preprocessing inside, raw pixels in) + Dropout + Dense logits.
    features = backbones.feature_extractor(BACKBONE)
    features.trainable = False
    inputs = keras.Input(shape=IMAGE_SIZE + (3,))
    x = features(inputs, training=False)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(2)(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    # Phase 1 (seed 000): 20 epochs, no early stopping.
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, verbose=2)
    _loss, test_accuracy = model.evaluate(test_ds, verbose=0)

    seconds = time.time() - started
    print(json.dumps({"test_accuracy": round(float(test_accuracy), 4), "seconds": round(seconds, 2), "epochs": args.epochs}))


if __name__ == "__main__":
    main()
