"""`FineTuner`'s verbs, called one by one as a user of the object would: head, then top blocks, then the test."""

import keras
import numpy as np
import pytest

from shoulders import backbones
from shoulders.config import RunConfig
from shoulders.data import SplitSettings, prepare
from shoulders.image.inputs import ImageInputs
from shoulders.image.model import build_classifier
from shoulders.runs.writer import RunFolder
from shoulders.training import phases
from shoulders.training.callbacks import DivergenceStop
from shoulders.training.finetuner import BackboneTaskError, Display, FineTuner, TrainingDivergedError, backbone_for_task


@pytest.fixture
def tuner(colour_folder, cache_dir, tmp_path):
    config = RunConfig(data=str(colour_folder), image_size=32, batch_size=8, epochs_head=30, epochs_finetune=2, patience=5, lr=1e-2, augmentation=None)
    spec = backbones.get(config.backbone)
    data = prepare(colour_folder, 32, crop_fraction=spec.crop_fraction, split=SplitSettings(seed=0))
    keras.utils.set_random_seed(0)
    model = build_classifier(config.backbone, len(data.classes), image_size=32, weights="imagenet")
    folder = RunFolder.create(tmp_path / "run")
    return FineTuner(model, spec, config, ImageInputs(data, spec), folder, Display(enabled=False))


def test_head_then_top_then_honest_test(tuner):
    head = tuner.fit_head()
    assert head.trainable_params == 1280 * 3 + 3  # the head alone
    assert tuner.features is None  # phase 2 follows: the backbone will change, so no cached-feature scoring
    frozen = phases.trainable_params(tuner.model)
    top = tuner.fit_top(head.epochs_run)
    assert top.trainable_params > frozen
    assert tuner.details["phase2_start_epoch"] == head.epochs_run and tuner.details["unfrozen_blocks"]
    assert tuner.details["lr_phase2"] == pytest.approx(tuner.config.lr / 100)
    assert {entry["phase"] for entry in top.history} == {"phase2"}
    assert top.history[0]["epoch"] == head.epochs_run  # the epoch count continues
    metrics, probabilities = tuner.evaluate()
    assert probabilities.shape == (len(tuner.inputs.data.splits["test"]), 3)
    assert metrics["test_accuracy"] >= 0.8 and len(metrics["test_predictions"]) == len(probabilities)


def test_feature_extraction_scores_on_the_cached_features(tuner):
    from dataclasses import replace

    tuner.config = replace(tuner.config, strategy="feature-extraction")
    tuner.fit_head()
    assert tuner.features is not None  # the backbone stays frozen: head(features) is the final model
    metrics, probabilities = tuner.evaluate()
    direct = tuner.inputs.probabilities(tuner.model, "test", 8)
    np.testing.assert_allclose(probabilities, direct, atol=1e-4)


def test_a_backbone_of_the_other_task_is_refused():
    with pytest.raises(BackboneTaskError, match="is an image backbone; for --task text"):
        backbone_for_task(RunConfig(data="x.csv", task="text", backbone="efficientnet_lite0"))


class _PoisonedStop(DivergenceStop):
    """The real divergence check, with the head's bias set to NaN before the first batch of epoch ``at + 1``."""

    at = 2

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == self.at and batch == 0:
            layer = self.model.get_layer("logits")
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.full_like(bias, np.nan)])


def test_a_loss_that_turns_nan_stops_training_and_keeps_the_best_weights(tuner, monkeypatch):
    from shoulders.training import finetuner

    monkeypatch.setattr(finetuner, "DivergenceStop", _PoisonedStop)
    phase1, phase2 = tuner.fine_tune()
    assert phase1.diverged["epoch"] == 3 and phase1.epochs_run <= 3  # stopped at once, not 30 epochs of NaN
    assert phase2.history == []  # no phase 2 from weights that just diverged
    assert tuner.details["diverged"]["phase"] == "phase1"
    assert all(np.isfinite(w).all() for w in tuner.model.get_layer("logits").get_weights())  # the best epoch's


def test_a_loss_that_diverges_at_once_refuses_the_run_naming_the_lr(tuner, monkeypatch):
    from shoulders.training import finetuner

    monkeypatch.setattr(_PoisonedStop, "at", 0)
    monkeypatch.setattr(finetuner, "DivergenceStop", _PoisonedStop)
    with pytest.raises(TrainingDivergedError, match="phase1 epoch 1, batch 1.*Lower --lr"):
        tuner.fit_head()
