"""`DivergenceStop`: a loss that becomes NaN or explodes stops `fit` at once, and says where."""

import math

import keras
import numpy as np

from shoulders.training.callbacks import DivergenceStop


class Poison(keras.callbacks.Callback):
    """Sets a weight to NaN before batch ``batch`` of epoch ``epoch`` (0-based): the loss turns NaN there."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.at, self.epoch = (epoch, batch), 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        if (self.epoch, batch) == self.at:
            kernel, bias = self.model.layers[0].get_weights()
            self.model.layers[0].set_weights([kernel, np.full_like(bias, np.nan)])


def _data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_a_nan_loss_stops_fit_at_that_batch_and_records_where():
    model, stop = _model(), DivergenceStop("phase1")
    history = model.fit(*_data(), batch_size=8, epochs=10, callbacks=[Poison(1, 2), stop], verbose=0)
    assert stop.diverged is not None and stop.diverged["epoch"] == 2 and stop.diverged["batch"] == 3
    assert math.isnan(stop.diverged["loss"])
    assert len(history.history["loss"]) == 2  # stopped in the epoch it broke, not 10 epochs of NaN


def test_an_exploding_loss_stops_fit():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(1e6), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    stop = DivergenceStop("phase1")
    model.fit(*_data(), batch_size=8, epochs=5, callbacks=[stop], verbose=0)
    assert stop.diverged is not None and stop.diverged["epoch"] == 1


def test_a_healthy_fit_is_left_alone():
    model, stop = _model(), DivergenceStop("phase1")
    history = model.fit(*_data(), batch_size=8, epochs=3, callbacks=[stop], verbose=0)
    assert stop.diverged is None and len(history.history["loss"]) == 3
