"""The .pth reader builds plain tensors and nothing else: a hostile file cannot run code."""

import os
import pickle

import numpy as np
import pytest

from shoulders.backbones import efficientnet_lite
from shoulders.backbones.torch_pickle import (
    LEGACY_MAGIC_NUMBER,
    UnsafeWeightsError,
    WeightsFileError,
    read_legacy_state_dict,
)


class _RunsAShellCommand:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


class _ImportsAModule:
    def __reduce__(self):
        return (__import__, ("subprocess",))


def _legacy_file(path, main_object, magic=LEGACY_MAGIC_NUMBER):
    with open(path, "wb") as handle:
        for part in (magic, 1001, {"protocol_version": 1001}, main_object, []):
            pickle.dump(part, handle, protocol=2)
    return path


@pytest.mark.parametrize("payload", [_RunsAShellCommand(), _ImportsAModule(), {"weight": _RunsAShellCommand()}])
def test_a_file_that_constructs_another_class_is_rejected(tmp_path, payload):
    path = _legacy_file(tmp_path / "evil.pth", payload)
    with pytest.raises(UnsafeWeightsError, match="refusing to load weights"):
        read_legacy_state_dict(path)


def test_a_hostile_magic_number_pickle_is_rejected_too(tmp_path):
    path = _legacy_file(tmp_path / "evil.pth", {}, magic=_RunsAShellCommand())
    with pytest.raises(UnsafeWeightsError):
        read_legacy_state_dict(path)


def test_a_file_that_is_not_a_legacy_checkpoint_gets_a_clear_error(tmp_path):
    path = _legacy_file(tmp_path / "other.pth", {}, magic=12345)
    with pytest.raises(WeightsFileError, match="not a legacy PyTorch file"):
        read_legacy_state_dict(path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a pickle at all")
    with pytest.raises(WeightsFileError):
        read_legacy_state_dict(garbage)


def test_bundled_state_dict_reads_every_tensor_with_torch_layouts():
    state = read_legacy_state_dict(efficientnet_lite.bundled_weights_path(0))
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert not any(key.endswith("num_batches_tracked") for key in state)
    assert all(value.dtype == np.float32 for value in state.values())
    assert np.isfinite(state["_conv_head.weight"]).all()
    # running variances of exactly zero exist: the reason BatchNorm epsilon must be Keras's 1e-3
    assert (state["_bn1.running_var"] >= 0).all()


def test_truncated_file_is_reported(tmp_path):
    data = efficientnet_lite.bundled_weights_path(0).read_bytes()
    short = tmp_path / "short.pth"
    short.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError, match="truncated"):
        read_legacy_state_dict(short)
