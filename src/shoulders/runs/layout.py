"""The run folder's file names: the contract between training (which writes them) and everything after.

A run folder looks like a preset folder, plain files readable without this package:
    config.json         everything that shaped the run, package versions included
    model.keras         the trained model (loads with safe_mode=True): raw pixels (or token ids) in, logits out
    history.json        one entry per epoch, both phases, with the phase name
    metrics.json        test metrics (the headline), val accuracy, params, LRs, timings, test predictions
    splits.json         which file (or row) went to train / val / test
    bad_files.json      files (rows) skipped, with the reason
    data.json           class counts, duplicates found, how the split was made
    tokenizer.json      text runs: the tokenizer, same vocabulary and length as training
    reference/          what later steps need from the data, so none of them re-reads it:
        test.npz            the test inputs (uint8 pixels, or texts), labels, the model's probabilities, names
        calibration.npz     image runs: a sample of training images (TFLite int8 calibration)
        errors.npz          image runs: thumbnails of the worst test errors (the report's gallery)
        seen.json           the content sha256 of every train and val row (evaluate --data warns on a match)
    report.html         the run's page; exports/ (manifest.json beside each format); tracking*.json
    .state/             resume state while the run is in progress (removed when it finishes)
"""

from __future__ import annotations

CONFIG = "config.json"
MODEL = "model.keras"
HISTORY = "history.json"
METRICS = "metrics.json"
SPLITS = "splits.json"
BAD_FILES = "bad_files.json"
DATA = "data.json"
TOKENIZER = "tokenizer.json"
REPORT = "report.html"
STATE = ".state"
REFERENCE = "reference"
TEST_REFERENCE = f"{REFERENCE}/test.npz"
CALIBRATION = f"{REFERENCE}/calibration.npz"
ERROR_THUMBNAILS = f"{REFERENCE}/errors.npz"
SEEN = f"{REFERENCE}/seen.json"
EXPORTS = "exports"
MANIFEST = "manifest.json"  # inside exports/
SAVEDMODEL = "savedmodel"  # inside exports/
COMPARISON = "comparison.json"  # a compare folder's record
TRACKING = "tracking.json"  # the MLflow run this folder was logged as
TRACKING_PENDING = "tracking_pending.json"  # logging failed: `shoulders runs --sync` retries
CALIBRATION_SAMPLE = 200  # training images kept in calibration.npz (evenly spaced over the train split)
THUMBNAIL_COUNT = 12  # worst test errors kept as thumbnails in errors.npz (the report's gallery)
