"""The bundled EfficientNet-Lite weights are genuine: the full ImageNet network recognises photos."""

import shutil

import numpy as np
import pytest
from skimage import data

from shoulders import backbones
from shoulders.backbones import efficientnet_lite
from shoulders.backbones.classify import classify_images

CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_imagenet_classifier_recognises_cat_and_coffee(name):
    cat, coffee = classify_images([data.chelsea(), data.coffee()], backbone=name, top_k=3)
    assert cat[0]["index"] in CATS, cat
    assert coffee[0]["index"] in COFFEE, coffee
    assert cat[0]["name"] in {"tabby", "tiger cat", "Egyptian cat"}


def test_architecture_matches_the_published_block_counts_and_widths():
    assert sum(efficientnet_lite.stage_repeats(1.0)) == 16
    assert sum(efficientnet_lite.stage_repeats(1.1)) == 21
    assert sum(efficientnet_lite.stage_repeats(1.2)) == 21
    widths = [efficientnet_lite.round_filters(f, 1.1) for f in (16, 24, 40, 80, 112, 192, 320)]
    assert widths == [16, 24, 48, 88, 120, 208, 352]


def test_weights_of_another_variant_are_refused(tmp_path):
    lite1_file = efficientnet_lite.bundled_weights_path(1)
    model = efficientnet_lite.efficientnet_lite(0, (64, 64, 3), weights=None)
    with pytest.raises(ValueError, match="efficientnet_lite0 file"):
        efficientnet_lite.load_weights(model, 0, lite1_file)


def test_a_file_whose_hash_does_not_match_its_name_is_refused(tmp_path):
    source = efficientnet_lite.bundled_weights_path(0)
    tampered = tmp_path / "efficientnet-lite0-57934424.pth"
    shutil.copy(source, tampered)
    with open(tampered, "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(backbones.WeightsFileError, match="does not match"):
        efficientnet_lite.efficientnet_lite(0, (64, 64, 3), weights=tampered)


def test_a_local_weights_file_loads_like_the_bundled_one(tmp_path):
    local = tmp_path / "my-weights.pth"
    shutil.copy(efficientnet_lite.bundled_weights_path(0), local)
    bundled = efficientnet_lite.efficientnet_lite(0, (64, 64, 3), weights="imagenet")
    mine = efficientnet_lite.efficientnet_lite(0, (64, 64, 3), weights=local)
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(bundled.predict(x, verbose=0), mine.predict(x, verbose=0))
