"""Each backbone's weights record is true, errors are ShouldersErrors, and the package imports only down."""

import ast
import dataclasses
from pathlib import Path

import pytest

from shoulders import backbones
from shoulders.backbones import registry
from shoulders.backbones.torch_pickle import sha256_of
from shoulders.backbones.weights import looks_like_download_failure
from shoulders.errors import ShouldersError

PACKAGE = Path(backbones.__file__).parent


@pytest.mark.parametrize("name", [n for n in backbones.names() if backbones.get(n).weights.file is not None])
def test_recorded_sha256_is_the_bundled_file_digest(name):
    weights = backbones.get(name).weights
    try:
        path = weights.file()
    except ImportError as error:  # the text extra is optional
        pytest.skip(str(error))
    assert weights.source == "bundled" and backbones.get(name).offline
    assert weights.sha256 == sha256_of(path)
    assert backbones.weights_sha256(name, "imagenet") == backbones.weights_sha256(name, "pretrained") == weights.sha256


def test_weights_sha256_of_random_a_download_and_a_local_file(tmp_path):
    local = tmp_path / "mine.weights.h5"
    local.write_bytes(b"weights")
    assert backbones.weights_sha256("efficientnet_lite0", None) == ""
    assert backbones.weights_sha256("resnet50", "imagenet") == ""  # keras fetches a file that depends on the size
    assert backbones.weights_sha256("resnet50", local) == sha256_of(local)
    (tmp_path / "model.safetensors").write_bytes(b"tensors")
    assert backbones.weights_sha256("minilm_l6", tmp_path) == sha256_of(tmp_path / "model.safetensors")


@pytest.mark.parametrize(
    "error",
    [
        Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]"),
        ConnectionError("Failed to resolve 'www.kaggle.com'"),
        OSError("<urlopen error [Errno 101] Network is unreachable>"),
    ],
)
def test_one_check_recognises_keras_applications_and_keras_hub_download_failures(error):
    assert looks_like_download_failure(error)


def test_a_corrupt_file_is_not_taken_for_a_download_failure():
    assert not looks_like_download_failure(ValueError("Incomplete or corrupted file detected."))


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (backbones.UnknownBackboneError, KeyError),
        (backbones.DuplicateBackboneError, ValueError),
        (backbones.ImageSizeError, ValueError),
        (backbones.NoClassifierError, ValueError),
        (backbones.PreprocessingError, ValueError),
        (backbones.UnsafeWeightsError, ValueError),
        (backbones.WeightsFileError, ValueError),
        (backbones.WeightsNotFoundError, FileNotFoundError),
        (backbones.WeightsUnavailableError, RuntimeError),
        (backbones.TextExtraMissingError, ImportError),
    ],
)
def test_backbone_errors_are_shoulders_errors_and_keep_their_builtin(error, builtin):
    assert issubclass(error, ShouldersError) and issubclass(error, builtin)


def test_registering_a_name_twice_is_refused():
    with pytest.raises(backbones.DuplicateBackboneError, match="registered twice"):
        registry.register(dataclasses.replace(backbones.get("vgg16")))


def test_a_text_encoder_has_no_imagenet_classifier():
    with pytest.raises(backbones.NoClassifierError, match="efficientnet_lite0"):
        backbones.imagenet_classifier("minilm_l6")


def test_classifier_download_failure_is_explained_too(monkeypatch):
    spec = backbones.get("vgg16")

    def fail(weights):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setitem(registry._REGISTRY, "vgg16", dataclasses.replace(spec, build_body=lambda *_: _tiny_body(), classifier=fail))
    with pytest.raises(backbones.WeightsUnavailableError, match="efficientnet_lite0"):
        backbones.imagenet_classifier("vgg16")


def _tiny_body():
    import keras

    inputs = keras.Input((224, 224, 3))
    return keras.Model(inputs, keras.layers.Conv2D(2, 32, strides=32)(inputs))


def test_backbones_import_nothing_above_them():
    """Backbones sit low: export, serving and the recipes import them, never the other way round."""
    allowed = ("shoulders.backbones", "shoulders.errors", "shoulders.io", "shoulders.data")
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [module or ""]
            for name in names:
                assert not name.startswith("shoulders") or name.startswith(allowed), f"{path.name} imports {name}"
