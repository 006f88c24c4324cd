"""Each rule of the recipe is enforced: break it and training refuses to start."""

import numpy as np
import pytest

from shoulders import backbones
from shoulders.config import ConfigError, RunConfig
from shoulders.training import guardrails, phases
from shoulders.image.model import build_classifier
from shoulders.training.model import HEAD_LAYERS, backbone_of

SIZE = 32


@pytest.fixture
def model():
    return build_classifier("efficientnet_lite0", 3, image_size=SIZE, weights=None)


def test_phase1_trains_exactly_the_head(model):
    phases.compile_model(model, 1e-3)
    guardrails.assert_head_only(model, HEAD_LAYERS)
    assert phases.trainable_params(model) == 1280 * 3 + 3


def test_phase1_with_an_unfrozen_backbone_is_refused(model):
    backbone_of(model).trainable = True
    with pytest.raises(guardrails.GuardrailError, match="head only"):
        guardrails.assert_head_only(model, HEAD_LAYERS)


def test_phase2_unfreezes_top_blocks_but_never_batchnorm(model):
    spec = backbones.get("efficientnet_lite0")
    blocks, depth = phases.unfreeze_top(model, spec, 3)
    assert blocks == ["block14", "block15", "head"]
    assert depth == {"block14": 2.0, "block15": 1.0, "head": 0.0}
    guardrails.assert_batchnorm_frozen(model)
    trainable_layers = {v.path.split("/")[0] for v in backbone_of(model).trainable_weights}
    assert trainable_layers == {
        "block14_expand_conv", "block14_dwconv", "block14_project_conv",
        "block15_expand_conv", "block15_dwconv", "block15_project_conv", "head_conv",
    }


def test_default_unfreeze_is_about_thirty_percent_of_blocks(model):
    blocks, _ = phases.unfreeze_top(model, backbones.get("efficientnet_lite0"), None)
    assert len(blocks) == round(0.3 * 18)  # stem + 16 blocks + head


def test_a_trainable_batchnorm_in_phase2_is_refused(model):
    phases.unfreeze_top(model, backbones.get("efficientnet_lite0"), 2)
    backbone_of(model).get_layer("head_bn").trainable = True
    with pytest.raises(guardrails.GuardrailError, match="BatchNormalization"):
        guardrails.assert_batchnorm_frozen(model)


def test_changing_trainables_without_recompiling_is_refused(model):
    phases.compile_model(model, 1e-3)
    guardrails.assert_compiled_for_current_trainables(model)
    phases.unfreeze_top(model, backbones.get("efficientnet_lite0"), 2)
    with pytest.raises(guardrails.GuardrailError, match="recompile"):
        guardrails.assert_compiled_for_current_trainables(model)
    phases.compile_model(model, 1e-5)
    guardrails.assert_compiled_for_current_trainables(model)


def test_never_compiled_model_is_refused(model):
    with pytest.raises(guardrails.GuardrailError):
        guardrails.assert_compiled_for_current_trainables(model)


def test_phase2_lr_must_be_below_phase1():
    guardrails.assert_lr_lower(1e-3, 1e-5)
    with pytest.raises(guardrails.GuardrailError, match="lower LR"):
        guardrails.assert_lr_lower(1e-3, 1e-3)
    with pytest.raises(ConfigError, match="must be below"):
        RunConfig(data="x", lr=1e-3, lr_finetune=1e-2)


def test_too_small_image_size_names_the_minimum():
    with pytest.raises(ValueError, match="at least 32"):
        build_classifier("efficientnet_lite0", 3, image_size=24, weights=None)


def test_layer_decay_moves_lower_blocks_less():
    model = build_classifier("efficientnet_lite0", 3, image_size=64, weights="imagenet")
    spec = backbones.get("efficientnet_lite0")
    _, depth = phases.unfreeze_top(model, spec, 2)
    multipliers = phases.layer_multipliers(model, spec, depth, 0.0 + 1e-9)
    phases.compile_model(model, 1e-2, multipliers)
    body = backbone_of(model)
    lower_before = body.get_layer("block15_dwconv").get_weights()[0].copy()
    top_before = body.get_layer("head_conv").get_weights()[0].copy()
    x = np.random.default_rng(0).uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    np.testing.assert_allclose(body.get_layer("block15_dwconv").get_weights()[0], lower_before, atol=1e-8)
    assert not np.allclose(body.get_layer("head_conv").get_weights()[0], top_before)


def test_guardrail_errors_are_user_errors_that_keep_their_builtin():
    from shoulders.errors import ShouldersError

    assert issubclass(guardrails.GuardrailError, ShouldersError) and issubclass(guardrails.GuardrailError, RuntimeError)
