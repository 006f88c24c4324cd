import keras
import numpy as np
import pytest

pytest.importorskip("keras_hub")

from shoulders import backbones  # noqa: E402
from shoulders.backbones.bert import minilm_folder  # noqa: E402
from shoulders.backbones.tokenizer import TextTokenizer  # noqa: E402
from shoulders.backbones.pooling import MaskedMeanPooling  # noqa: E402
from shoulders.text.model import build_text_classifier  # noqa: E402
from shoulders.training import guardrails, phases  # noqa: E402
from shoulders.training.model import HEAD_LAYERS, feature_model  # noqa: E402

SENTENCES = ["A great movie!", "terrible acting and a dull plot", "It was fine, I guess."]


@pytest.fixture(scope="module")
def encoder():
    return backbones.body("minilm_l6")


@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer.from_folder(minilm_folder(), 64)


def test_masked_mean_ignores_padding():
    """Keras' own masked GlobalAveragePooling1D (what new models use) and the older MaskedMeanPooling agree."""
    sequence = np.random.default_rng(0).normal(size=(1, 6, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0, 0]])
    for pooled in (keras.layers.GlobalAveragePooling1D()(sequence, mask=mask), MaskedMeanPooling()(sequence, mask)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(pooled)[0], sequence[0, :3].mean(0), rtol=1e-6)


def test_minilm_registry_facts_match_the_built_encoder(encoder):
    spec = backbones.get("minilm_l6")
    assert spec.kind == "text" and spec.offline
    assert encoder.count_params() == spec.params
    assert int(encoder.output.shape[-1]) == spec.feature_width


def test_minilm_embeddings_match_sentence_transformers(encoder, tokenizer):
    """The Keras port of the bundled weights computes what the original (PyTorch) model computes."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(minilm_folder()), device="cpu")
    expected = reference.encode(SENTENCES)  # its pipeline ends in Normalize: compare directions
    model = feature_model(build_text_classifier(encoder, 2))
    ours = keras.ops.convert_to_numpy(model(tokenizer(SENTENCES), training=False))
    cosine = (ours * expected).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.9999
    np.testing.assert_allclose(ours / np.linalg.norm(ours, axis=1, keepdims=True), expected, atol=1e-3)


def test_padding_does_not_change_the_prediction(encoder, tokenizer):
    model = build_text_classifier(encoder, 3)
    short = model(tokenizer(SENTENCES[:1], length=16), training=False)
    long = model(tokenizer(SENTENCES[:1], length=64), training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(short), keras.ops.convert_to_numpy(long), atol=1e-5)


def test_phases_unfreeze_top_transformer_layers_only(encoder):
    spec = backbones.get("minilm_l6")
    model = build_text_classifier(encoder, 2)
    phases.freeze_backbone(model)
    phases.compile_model(model, 1e-3)
    guardrails.assert_head_only(model, HEAD_LAYERS)
    blocks, _ = phases.unfreeze_top(model, spec, None)
    assert blocks == ["transformer_layer_4", "transformer_layer_5"]  # the top ~30% of 7 groups
    trainable = {v.path.split("/")[0] for v in model.trainable_weights}
    assert trainable == {"transformer_layer_4", "transformer_layer_5", "logits"}
    with pytest.raises(guardrails.GuardrailError):
        guardrails.assert_compiled_for_current_trainables(model)  # changed trainables without recompiling
    phases.freeze_backbone(model)


def test_text_classifier_round_trips_with_safe_mode(encoder, tokenizer, tmp_path):
    model = build_text_classifier(encoder, 2)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    inputs = tokenizer(SENTENCES)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(inputs, training=False)),
        keras.ops.convert_to_numpy(again(inputs, training=False)),
        atol=1e-5,
    )


def test_online_preset_offline_error_names_the_bundled_encoder(monkeypatch):
    from shoulders.backbones import WeightsUnavailableError, bert

    def refuse(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'www.kaggle.com'")

    monkeypatch.setattr(bert.keras_hub().models.BertBackbone, "from_preset", refuse)
    with pytest.raises(WeightsUnavailableError, match="minilm_l6"):
        backbones.body("bert_tiny_en_uncased")


@pytest.mark.parametrize("name", ["bert_tiny_en_uncased", "minilm_l6", "bert_base_en_uncased"])
def test_random_init_encoders_match_registry_params(name):
    spec = backbones.get(name)
    assert backbones.body(name, weights=None).count_params() == spec.params


def test_phase2_top_model_on_cached_states_is_the_classifier(encoder, tokenizer):
    """Phase 2 trains the unfrozen top on the frozen bottom's cached outputs: same function, same weights."""
    from shoulders.text.data import TextData
    from shoulders.text.inputs import TextInputs

    texts = tuple(SENTENCES * 4)
    data = TextData(
        classes=("a", "b"), texts=texts, labels=np.arange(len(texts)) % 2, names=tuple(map(str, range(len(texts)))),
        splits={"train": np.arange(8), "val": np.arange(8, 12), "test": np.zeros(0, dtype=int)},
    )
    model = build_text_classifier(encoder, 2)
    blocks, _ = phases.unfreeze_top(model, backbones.get("minilm_l6"), 3)
    top, batches = TextInputs(data, tokenizer).finetune_view(model, blocks, config=None)
    assert top is not model and {v.path for v in top.trainable_weights} == {v.path for v in model.trainable_weights}
    hidden_inputs, _ = batches("val", 4)[0]
    order = batches("val", 4).order
    expected = model(tokenizer([texts[8 + i] for i in order]), training=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(top(hidden_inputs, training=False)), keras.ops.convert_to_numpy(expected), atol=1e-4
    )
    phases.freeze_backbone(model)
