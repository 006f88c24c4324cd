"""`RunConfig` refuses every numeric option that cannot work, by the option's name, before any work."""

import math

import pytest

from shoulders.config import ConfigError, RunConfig

BAD_VALUES = [
    ("lr", math.nan, "--lr"),
    ("lr", math.inf, "--lr"),
    ("lr", "0.1", "--lr"),
    ("lr_finetune", math.nan, "--lr-finetune"),
    ("epochs_head", -1, "--epochs-head"),
    ("epochs_finetune", -1, "--epochs-finetune"),
    ("epochs_head", 2.5, "--epochs-head"),
    ("batch_size", 0, "--batch-size"),
    ("patience", 0, "--patience"),
    ("dropout", 1.0, "--dropout"),
    ("dropout", math.nan, "--dropout"),
    ("crop_fraction", math.nan, "--crop-fraction"),
    ("layer_decay", math.inf, "--layer-decay"),
    ("image_size", 0, "--image-size"),
    ("image_size", True, "--image-size"),
    ("seed", -1, "--seed"),
    ("val_fraction", math.nan, "val_fraction"),
]


@pytest.mark.parametrize(("field", "value", "option"), BAD_VALUES)
def test_a_bad_number_is_refused_by_its_option_name(field, value, option):
    with pytest.raises(ConfigError, match=f"^{option} ") as error:
        RunConfig(data="photos", **{field: value})
    assert repr(value) in str(error.value)


def test_text_numbers_are_checked_too():
    with pytest.raises(ConfigError, match="^--max-length "):
        RunConfig(data="t.csv", task="text", max_length=math.nan)
    with pytest.raises(ConfigError, match="^--max-train "):
        RunConfig(data="t.csv", task="text", max_train=-5)


def test_good_values_pass():
    RunConfig(data="photos", lr=0.01, lr_finetune=1e-4, epochs_finetune=0, dropout=0.0, crop_fraction=1.0, layer_decay=1.0, image_size=32, seed=3)
